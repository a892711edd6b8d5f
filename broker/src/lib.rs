//! Open Service Broker API v2.17 (synchronous profile): filled in by the broker issue.
