//! Values that flow along links.

use std::collections::BTreeMap;
use std::sync::Arc;

use nodes::PortType;

use crate::image::{Image, Mask};

/// A value on a port. Pixel data is shared (`Arc`), so passing it along and caching it is cheap.
#[derive(Clone, Debug)]
pub enum Value {
    Image(Arc<Image>),
    /// Several images on one Image port (diffusers' `num_images_per_prompt`): nodes that take
    /// one image use the first; SaveImage writes each.
    ImageBatch(Arc<Vec<Arc<Image>>>),
    Mask(Arc<Mask>),
    /// A mask with the generator's per-pixel instance ids (`ids[y * width + x]`, 0 = no
    /// instance; defect generators make these). Reads as a plain mask everywhere
    /// ([`Value::as_mask`]); SaveImage and ExportDataset store the ids with the output, for
    /// `export --instances per-defect`. Nodes that edit a mask make a plain one.
    InstanceMask(Arc<Mask>, Arc<Vec<u32>>),
    Int(i64),
    Float(f64),
    Text(Arc<str>),
    /// A resolved seed (the Seed value node's output).
    Seed(u64),
    /// One option of a choice (the Choice value node's output).
    Choice(Arc<str>),
    /// A loaded checkpoint (shared: the weights live in the model cache).
    Model(Arc<crate::sd::ModelHandle>),
    /// A trained defect detector (LoadDetector).
    Detector(Arc<dyn crate::inspect::Scorer>),
    /// A loaded ControlNet (LoadControlNet; shared: the weights live in its model cache).
    ControlNet(Arc<crate::sd::controlnet::ControlNet>),
    /// ControlNets applied to control images, in chain order (ControlNet nodes).
    Control(Arc<Vec<crate::sd::controlnet::ControlSpec>>),
}

impl std::fmt::Debug for dyn crate::inspect::Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} detector {}", self.kind(), self.sha256())
    }
}

impl Value {
    pub fn port_type(&self) -> PortType {
        match self {
            Value::Image(_) | Value::ImageBatch(_) => PortType::Image,
            Value::Mask(_) | Value::InstanceMask(..) => PortType::Mask,
            Value::Int(_) => PortType::Int,
            Value::Float(_) => PortType::Float,
            Value::Text(_) => PortType::Text,
            Value::Seed(_) => PortType::Seed,
            Value::Choice(_) => PortType::Choice,
            Value::Model(_) => PortType::Model,
            Value::Detector(_) => PortType::Detector,
            Value::ControlNet(_) => PortType::ControlNet,
            Value::Control(_) => PortType::Control,
        }
    }

    /// Bytes held (for the cache's memory budget).
    pub fn size_bytes(&self) -> usize {
        match self {
            Value::Image(i) => i.size_bytes(),
            Value::ImageBatch(b) => b.iter().map(|i| i.size_bytes()).sum(),
            Value::Mask(m) => m.size_bytes(),
            Value::InstanceMask(m, ids) => m.size_bytes() + ids.len() * 4,
            Value::Text(t) | Value::Choice(t) => t.len(),
            Value::Int(_) | Value::Float(_) | Value::Seed(_) => 8,
            // The weights are counted by the model cache, not the value cache.
            Value::Model(_) | Value::Detector(_) | Value::ControlNet(_) => 64,
            Value::Control(c) => c
                .iter()
                .map(|s| s.image.size_bytes() + s.mask.as_ref().map_or(0, |m| m.size_bytes()))
                .sum(),
        }
    }

    /// The image on an Image port: for a batch, its first image.
    pub fn as_image(&self) -> Option<&Arc<Image>> {
        match self {
            Value::Image(i) => Some(i),
            Value::ImageBatch(b) => b.first(),
            _ => None,
        }
    }

    /// Every image on an Image port (one, or a batch's).
    pub fn images(&self) -> Vec<Arc<Image>> {
        match self {
            Value::Image(i) => vec![i.clone()],
            Value::ImageBatch(b) => b.as_ref().clone(),
            _ => Vec::new(),
        }
    }

    /// One image as is, several as an [`Value::ImageBatch`].
    pub fn from_images(mut images: Vec<Image>) -> Value {
        if images.len() == 1 {
            if let Some(i) = images.pop() {
                return Value::Image(Arc::new(i));
            }
        }
        Value::ImageBatch(Arc::new(images.into_iter().map(Arc::new).collect()))
    }

    pub fn as_model(&self) -> Option<&Arc<crate::sd::ModelHandle>> {
        match self {
            Value::Model(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_detector(&self) -> Option<&Arc<dyn crate::inspect::Scorer>> {
        match self {
            Value::Detector(d) => Some(d),
            _ => None,
        }
    }

    pub fn as_controlnet(&self) -> Option<&Arc<crate::sd::controlnet::ControlNet>> {
        match self {
            Value::ControlNet(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_control(&self) -> Option<&Arc<Vec<crate::sd::controlnet::ControlSpec>>> {
        match self {
            Value::Control(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_mask(&self) -> Option<&Arc<Mask>> {
        match self {
            Value::Mask(m) | Value::InstanceMask(m, _) => Some(m),
            _ => None,
        }
    }

    /// The per-pixel instance ids of a mask from a defect generator, if it carries them.
    pub fn instance_ids(&self) -> Option<&Arc<Vec<u32>>> {
        match self {
            Value::InstanceMask(_, ids) => Some(ids),
            _ => None,
        }
    }
}

impl From<Image> for Value {
    fn from(i: Image) -> Value {
        Value::Image(Arc::new(i))
    }
}

impl From<Mask> for Value {
    fn from(m: Mask) -> Value {
        Value::Mask(Arc::new(m))
    }
}

/// A node's outputs by port name.
pub type Outputs = BTreeMap<&'static str, Value>;
