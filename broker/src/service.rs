//! The [`ServiceBroker`] trait: what a service implements to be served by [`crate::endpoints`],
//! and the outcomes that decide between `201` and `200`, or `200` and `410`. Requests reach
//! it already authenticated and checked against the catalog (ids known, required fields present,
//! `maintenance_info` matching); the service decides what they mean for its own state.

use async_trait::async_trait;

use crate::error::BrokerError;
use crate::types::{
    BindRequest, Binding, Catalog, DeleteRequest, InstanceDetails, ProvisionRequest,
    ProvisionResponse, UpdateRequest, UpdateResponse,
};

/// The result of a `PUT`: created now (`201`) or already there with identical attributes (`200`).
/// Same id with different attributes is [`BrokerError::Conflict`] (`409`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    Created(T),
    Existing(T),
}

/// The result of a `DELETE`: deleted now (`200`) or unknown (`410`, which platforms treat as done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    Gone,
}

/// A synchronous Open Service Broker. Every method finishes the operation before it returns.
#[async_trait]
pub trait ServiceBroker: Send + Sync + 'static {
    /// The catalog; its ids must not change while the broker runs.
    fn catalog(&self) -> &Catalog;

    async fn provision(
        &self,
        instance_id: &str,
        request: ProvisionRequest,
    ) -> Result<Outcome<ProvisionResponse>, BrokerError>;

    /// [`BrokerError::NotFound`] for an unknown instance.
    async fn fetch_instance(&self, instance_id: &str) -> Result<InstanceDetails, BrokerError>;

    /// [`BrokerError::NotFound`] for an unknown instance.
    async fn update(
        &self,
        instance_id: &str,
        request: UpdateRequest,
    ) -> Result<UpdateResponse, BrokerError>;

    async fn deprovision(
        &self,
        instance_id: &str,
        request: DeleteRequest,
    ) -> Result<Removal, BrokerError>;

    async fn bind(
        &self,
        instance_id: &str,
        binding_id: &str,
        request: BindRequest,
    ) -> Result<Outcome<Binding>, BrokerError>;

    /// [`BrokerError::NotFound`] for an unknown binding.
    async fn fetch_binding(
        &self,
        instance_id: &str,
        binding_id: &str,
    ) -> Result<Binding, BrokerError>;

    async fn unbind(
        &self,
        instance_id: &str,
        binding_id: &str,
        request: DeleteRequest,
    ) -> Result<Removal, BrokerError>;
}
