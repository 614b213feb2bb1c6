-- Alarms, their history, SNS topics and subscriptions, the notification outbox.
-- Timestamps are epoch milliseconds.  No primary keys: the single writer keeps names unique,
-- and DuckDB's index constraints are checked eagerly inside a group-committed transaction.
CREATE TABLE IF NOT EXISTS alarms (
    account            VARCHAR NOT NULL,
    region             VARCHAR NOT NULL,
    name               VARCHAR NOT NULL,
    alarm_type         VARCHAR NOT NULL,   -- MetricAlarm | CompositeAlarm
    config             VARCHAR NOT NULL,   -- JSON: the Put*Alarm parameters (Tags excluded)
    config_updated     BIGINT NOT NULL,
    actions_enabled    BOOLEAN NOT NULL,
    state_value        VARCHAR NOT NULL,
    state_reason       VARCHAR NOT NULL,
    state_reason_data  VARCHAR,
    state_updated      BIGINT NOT NULL,
    state_transitioned BIGINT NOT NULL,
    suppressed_by      VARCHAR,            -- composites: WaitPeriod | ExtensionPeriod | Alarm
    suppressed_until   BIGINT,
    suppress_pending   VARCHAR             -- held actions: the OldStateValue of their message
);

CREATE SEQUENCE IF NOT EXISTS alarm_history_seq;
CREATE TABLE IF NOT EXISTS alarm_history (
    seq        BIGINT NOT NULL,
    account    VARCHAR NOT NULL,
    region     VARCHAR NOT NULL,
    alarm_name VARCHAR NOT NULL,
    alarm_type VARCHAR NOT NULL,
    ts         BIGINT NOT NULL,
    item_type  VARCHAR NOT NULL,           -- ConfigurationUpdate | StateUpdate | Action
    summary    VARCHAR NOT NULL,
    data       VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS sns_topics (
    arn        VARCHAR NOT NULL,
    account    VARCHAR NOT NULL,
    region     VARCHAR NOT NULL,
    name       VARCHAR NOT NULL,
    attributes VARCHAR NOT NULL,           -- JSON: the settable attributes
    created    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS sns_subscriptions (
    arn           VARCHAR NOT NULL,
    topic_arn     VARCHAR NOT NULL,
    account       VARCHAR NOT NULL,
    region        VARCHAR NOT NULL,
    protocol      VARCHAR NOT NULL,
    endpoint      VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,        -- pending | confirmed | deleted
    token         VARCHAR NOT NULL,
    attributes    VARCHAR NOT NULL,        -- JSON: the settable attributes
    authenticated BOOLEAN NOT NULL,
    created       BIGINT NOT NULL
);

-- One row per message and subscription still to deliver.  Rows leave the outbox when
-- delivered; after the last retry they move to sns_dead_letters.
CREATE SEQUENCE IF NOT EXISTS sns_outbox_seq;
CREATE TABLE IF NOT EXISTS sns_outbox (
    id               BIGINT NOT NULL,
    subscription_arn VARCHAR NOT NULL,
    topic_arn        VARCHAR NOT NULL,
    endpoint         VARCHAR NOT NULL,
    message_type     VARCHAR NOT NULL,     -- Notification | SubscriptionConfirmation | UnsubscribeConfirmation
    message_id       VARCHAR NOT NULL,
    body             VARCHAR NOT NULL,     -- the signed JSON document, sent as is on every try
    raw              BOOLEAN NOT NULL,     -- RawMessageDelivery: body is the bare message
    policy           VARCHAR NOT NULL,     -- JSON: the effective healthyRetryPolicy
    attempts         INTEGER NOT NULL,
    next_attempt     BIGINT NOT NULL,
    created          BIGINT NOT NULL,
    last_error       VARCHAR
);
-- Alarm actions: JSON naming the alarm, the transition time, the topic and the published
-- message, so that the delivery's outcome becomes the alarm's Action history item.  NULL for
-- confirmations and the Publish API.  (Added after the first release: ALTER for old files.)
ALTER TABLE sns_outbox ADD COLUMN IF NOT EXISTS alarm_action VARCHAR;

CREATE TABLE IF NOT EXISTS sns_dead_letters (
    id               BIGINT NOT NULL,
    subscription_arn VARCHAR NOT NULL,
    topic_arn        VARCHAR NOT NULL,
    endpoint         VARCHAR NOT NULL,
    message_type     VARCHAR NOT NULL,
    message_id       VARCHAR NOT NULL,
    body             VARCHAR NOT NULL,
    attempts         INTEGER NOT NULL,
    created          BIGINT NOT NULL,
    failed           BIGINT NOT NULL,
    last_error       VARCHAR
);
