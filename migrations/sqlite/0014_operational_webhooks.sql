-- An organisation's operational webhook: a config of profile
-- `operational` that receives notices about the organisation's other
-- configs (endpoint.disabled, endpoint.enabled, endpoint.secret_rotated,
-- delivery.exhausted).
CREATE TABLE operational_webhooks (
    organisation BIGINT PRIMARY KEY,
    config_id BIGINT NOT NULL
);
