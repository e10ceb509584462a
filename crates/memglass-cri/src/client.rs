//! A CRI client over a unix socket: tonic's generic gRPC client with prost messages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::{Error, Result};
use crate::proto;

/// A connection to one runtime's CRI socket. Async; [`crate::fetch`] wraps it for sync callers.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    grpc: tonic::client::Grpc<Channel>,
    timeout: Duration,
}

impl Client {
    /// Connect to `socket`; every call gives up after `timeout`.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Client> {
        let path = socket.to_path_buf();
        // The URI is required by tonic but unused: the connector dials the socket.
        let endpoint = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(timeout)
            .timeout(timeout);
        let channel = endpoint
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    tokio::net::UnixStream::connect(path)
                        .await
                        .map(TokioIo::new)
                }
            }))
            .await
            .map_err(|e| Error::Connect {
                socket: socket.to_path_buf(),
                reason: source_chain(&e),
            })?;
        Ok(Client {
            socket: socket.to_path_buf(),
            grpc: tonic::client::Grpc::new(channel),
            timeout,
        })
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Call `method` (`/runtime.v1.RuntimeService/ListContainers`) with `request`.
    pub async fn call<Req, Resp>(&mut self, method: &'static str, request: Req) -> Result<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let failed = |socket: &Path, reason: String| Error::Call {
            socket: socket.to_path_buf(),
            method,
            reason,
        };
        self.grpc
            .ready()
            .await
            .map_err(|e| failed(&self.socket, source_chain(&e)))?;
        let mut request = tonic::Request::new(request);
        request.set_timeout(self.timeout);
        let codec = tonic::codec::ProstCodec::<Req, Resp>::default();
        let response = self
            .grpc
            .unary(request, PathAndQuery::from_static(method), codec)
            .await
            .map_err(|status| {
                failed(
                    &self.socket,
                    format!("{}: {}", status.code(), status.message()),
                )
            })?;
        Ok(response.into_inner())
    }

    /// The runtime's name and versions.
    pub async fn version(&mut self) -> Result<proto::VersionResponse> {
        let request = proto::VersionRequest {
            version: "v1".into(),
        };
        self.call("/runtime.v1.RuntimeService/Version", request)
            .await
    }

    /// Every pod sandbox the runtime knows.
    pub async fn list_pod_sandboxes(&mut self) -> Result<Vec<proto::PodSandbox>> {
        let response: proto::ListPodSandboxResponse = self
            .call(
                "/runtime.v1.RuntimeService/ListPodSandbox",
                proto::ListPodSandboxRequest {},
            )
            .await?;
        Ok(response.items)
    }

    /// Every container the runtime knows.
    pub async fn list_containers(&mut self) -> Result<Vec<proto::Container>> {
        let response: proto::ListContainersResponse = self
            .call(
                "/runtime.v1.RuntimeService/ListContainers",
                proto::ListContainersRequest {},
            )
            .await?;
        Ok(response.containers)
    }
}

/// "transport error: No such file or directory" rather than just "transport error".
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}
