//! Models: the [`manager::ModelManager`] (folders, hashes, architectures, resolving a graph's
//! model references by hash), fetching and converting the ISNet weights
//! ([`isnet_weights`], with a small ONNX reader in [`onnx`]), the ISNet network itself
//! ([`isnet::IsNet`], on candle) and background removal built on it ([`background`]).
//! [`safetensors_check`] is the one safetensors validator every reader goes through.
//! [`efficientnet`]: EfficientNet-Lite0 with ImageNet weights (features and top-5 tags), whose
//! legacy `.pth` is read by the restricted pickle reader [`pickle`]. [`browse`]: what a model
//! browser shows (kinds, a LoRA's base model and training tags, search) and fetching the
//! models we know how to get.

pub mod background;
pub mod browse;
pub mod efficientnet;
pub mod isnet;
pub mod isnet_weights;
pub mod manager;
pub mod onnx;
pub mod pickle;
pub mod safetensors_check;
