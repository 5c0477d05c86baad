-- MLflow's tracking schema on PostgreSQL, as its alembic migrations leave
-- it (mlflow/store/tracking/dbmodels/models.py: the tables a tracking
-- server writes for experiments, runs, metrics and their latest values,
-- params and tags, with the same primary keys, checks, foreign keys and
-- run_uuid indexes). Types as SQLAlchemy maps them on PostgreSQL:
-- String(n) -> VARCHAR(n), Float(53) -> DOUBLE PRECISION,
-- BigInteger -> BIGINT, Boolean -> BOOLEAN.

CREATE TABLE experiments (
    experiment_id SERIAL NOT NULL,
    name VARCHAR(256) NOT NULL,
    artifact_location VARCHAR(256),
    lifecycle_stage VARCHAR(32),
    creation_time BIGINT,
    last_update_time BIGINT,
    CONSTRAINT experiment_pk PRIMARY KEY (experiment_id),
    CONSTRAINT experiments_name_key UNIQUE (name),
    CONSTRAINT experiments_lifecycle_stage
        CHECK (lifecycle_stage IN ('active', 'deleted'))
);

CREATE TABLE experiment_tags (
    key VARCHAR(250) NOT NULL,
    value VARCHAR(5000),
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    CONSTRAINT experiment_tag_pk PRIMARY KEY (key, experiment_id)
);

CREATE TABLE runs (
    run_uuid VARCHAR(32) NOT NULL,
    name VARCHAR(250),
    source_type VARCHAR(20),
    source_name VARCHAR(500),
    entry_point_name VARCHAR(50),
    user_id VARCHAR(256),
    status VARCHAR(20),
    start_time BIGINT,
    end_time BIGINT,
    deleted_time BIGINT,
    source_version VARCHAR(50),
    lifecycle_stage VARCHAR(20),
    artifact_uri VARCHAR(200),
    experiment_id INTEGER REFERENCES experiments (experiment_id),
    CONSTRAINT run_pk PRIMARY KEY (run_uuid),
    CONSTRAINT source_type CHECK (source_type IN
        ('NOTEBOOK', 'JOB', 'LOCAL', 'UNKNOWN', 'PROJECT')),
    CONSTRAINT status CHECK (status IN
        ('SCHEDULED', 'FAILED', 'FINISHED', 'RUNNING', 'KILLED')),
    CONSTRAINT runs_lifecycle_stage
        CHECK (lifecycle_stage IN ('active', 'deleted'))
);

CREATE TABLE metrics (
    key VARCHAR(250) NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    timestamp BIGINT NOT NULL,
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    step BIGINT DEFAULT 0 NOT NULL,
    is_nan BOOLEAN DEFAULT false NOT NULL,
    CONSTRAINT metric_pk
        PRIMARY KEY (key, timestamp, step, run_uuid, value, is_nan)
);
CREATE INDEX index_metrics_run_uuid ON metrics (run_uuid);

CREATE TABLE latest_metrics (
    key VARCHAR(250) NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    timestamp BIGINT,
    step BIGINT NOT NULL,
    is_nan BOOLEAN NOT NULL,
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    CONSTRAINT latest_metric_pk PRIMARY KEY (key, run_uuid)
);
CREATE INDEX index_latest_metrics_run_uuid ON latest_metrics (run_uuid);

CREATE TABLE params (
    key VARCHAR(250) NOT NULL,
    value VARCHAR(8000) NOT NULL,
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    CONSTRAINT param_pk PRIMARY KEY (key, run_uuid)
);
CREATE INDEX index_params_run_uuid ON params (run_uuid);

CREATE TABLE tags (
    key VARCHAR(250) NOT NULL,
    value VARCHAR(8000),
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    CONSTRAINT tag_pk PRIMARY KEY (key, run_uuid)
);
CREATE INDEX index_tags_run_uuid ON tags (run_uuid);
