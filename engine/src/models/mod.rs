//! Models: the [`manager::ModelManager`] (folders, hashes, architectures, resolving a graph's
//! model references by hash), fetching and converting the ISNet weights
//! ([`isnet_weights`], with a small ONNX reader in [`onnx`]), the ISNet network itself
//! ([`isnet::IsNet`], on candle) and background removal built on it ([`background`]).
//! [`safetensors_check`] is the one safetensors validator every reader goes through.

pub mod background;
pub mod isnet;
pub mod isnet_weights;
pub mod manager;
pub mod onnx;
pub mod safetensors_check;
