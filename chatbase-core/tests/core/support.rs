//! What the tests share: the Node vectors.

/// The vectors of `testdata/node-hmac-sha1.json`.
#[derive(serde::Deserialize)]
pub struct NodeVectors {
    pub generator: String,
    pub vectors: Vec<NodeVector>,
}

/// One vector: a secret, a body (base64) and Node's signature of it.
#[derive(serde::Deserialize)]
pub struct NodeVector {
    pub name: String,
    pub secret: String,
    pub body_base64: String,
    pub signature: String,
}

pub fn node_vectors() -> NodeVectors {
    serde_json::from_str(include_str!("../../../testdata/node-hmac-sha1.json")).unwrap()
}
