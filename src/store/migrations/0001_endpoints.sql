-- app_endpoints is the table of the original promfetcher (guid = binding id): kept as it is, so
-- a database it wrote keeps its bindings, and it stays the one source of app -> path.
CREATE TABLE IF NOT EXISTS app_endpoints (
    guid VARCHAR(255) NOT NULL PRIMARY KEY,
    app_guid VARCHAR(255),
    endpoint VARCHAR(255)
);
CREATE TABLE IF NOT EXISTS broker_instances (
    instance_id VARCHAR(255) NOT NULL PRIMARY KEY,
    service_id VARCHAR(255) NOT NULL,
    plan_id VARCHAR(255) NOT NULL,
    organization_guid VARCHAR(255) NOT NULL,
    space_guid VARCHAR(255) NOT NULL,
    parameters VARCHAR(4000) NOT NULL,
    endpoint VARCHAR(255)
);
CREATE TABLE IF NOT EXISTS broker_bindings (
    binding_id VARCHAR(255) NOT NULL PRIMARY KEY,
    instance_id VARCHAR(255) NOT NULL,
    service_id VARCHAR(255) NOT NULL,
    plan_id VARCHAR(255) NOT NULL,
    app_guid VARCHAR(255),
    parameters VARCHAR(4000) NOT NULL,
    endpoint VARCHAR(255)
);
