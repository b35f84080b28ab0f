//! Groundwork for the Stable Diffusion engine: [`torch_rng::TorchGenerator`], a bit-exact port
//! of torch's CPU generator (`torch.Generator("cpu").manual_seed(s)` with `randn`/`rand`), so
//! that initial noise equals what diffusers draws for the same seed.

pub mod torch_rng;
