"""runvault: the Python SDK of the runvault experiment-tracking cluster.

    import runvault
    with runvault.init("vision", "resnet50", config={"lr": 0.01}) as run:
        for step in range(1000):
            run.log({"loss": loss, "acc": acc})

Standard library only. See README.md beside this package.
"""

from ._errors import (AuthError, PermissionDenied, RunExistsError,
                      RunNotFoundError, RunvaultError, SpoolBusyError)
from ._ids import new_client_id, new_run_id
from ._run import Run, init, sync

__all__ = ["init", "sync", "Run", "RunvaultError", "RunNotFoundError",
           "RunExistsError", "SpoolBusyError", "AuthError",
           "PermissionDenied", "new_run_id", "new_client_id"]
__version__ = "0.1.0"
