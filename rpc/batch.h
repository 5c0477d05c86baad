/* Transitional (issue 12): the client library moved to rpc/client/. At
 * merge, replace #include "rpc/batch.h" by #include "rpc/client/batch.h" over
 * the tree and delete this file. */
#include "rpc/client/batch.h"
