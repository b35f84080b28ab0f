//! Node kinds, their ports and parameters.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::graph::{ParamValue, SeedValue};

/// The type of a port. Links are only allowed between ports of the same type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortType {
    /// An RGBA image.
    Image,
    /// A one-channel mask; white (1) marks the defect or the region to repaint.
    Mask,
    /// A loaded checkpoint (UNet, VAE, text encoders) plus any applied LoRAs.
    Model,
    Int,
    Float,
    Text,
    Seed,
    Choice,
    /// A trained defect detector (classifier or segmenter, `train-classifier` /
    /// `train-segmenter` output), loaded by LoadDetector.
    Detector,
    /// A loaded ControlNet network (LoadControlNet).
    ControlNet,
    /// ControlNets applied to control images (ControlNet nodes, chained): what a sampler's
    /// `control` input takes.
    Control,
}

impl PortType {
    pub const ALL: [PortType; 11] = [
        PortType::Image,
        PortType::Mask,
        PortType::Model,
        PortType::Int,
        PortType::Float,
        PortType::Text,
        PortType::Seed,
        PortType::Choice,
        PortType::Detector,
        PortType::ControlNet,
        PortType::Control,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PortType::Image => "Image",
            PortType::Mask => "Mask",
            PortType::Model => "Model",
            PortType::Int => "Int",
            PortType::Float => "Float",
            PortType::Text => "Text",
            PortType::Seed => "Seed",
            PortType::Choice => "Choice",
            PortType::Detector => "Detector",
            PortType::ControlNet => "ControlNet",
            PortType::Control => "Control",
        }
    }

    /// The type of the input port a parameter of this kind gets when it is declared an input
    /// ([`ParamSpec::as_input`]): numbers stay numbers, everything written as text is Text.
    pub fn of_param(kind: &ParamKind) -> PortType {
        match kind {
            ParamKind::Int { .. } | ParamKind::Bool { .. } => PortType::Int,
            ParamKind::Float { .. } => PortType::Float,
            ParamKind::Seed => PortType::Seed,
            ParamKind::Choice { .. } => PortType::Choice,
            ParamKind::Text { .. }
            | ParamKind::Color { .. }
            | ParamKind::InputFile { .. }
            | ParamKind::OutputTemplate { .. } => PortType::Text,
        }
    }
}

impl std::fmt::Display for PortType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An input or output port of a node kind.
#[derive(Debug)]
pub struct PortSpec {
    pub name: &'static str,
    pub ty: PortType,
    /// An optional input may stay unconnected. (Ignored for outputs.)
    pub optional: bool,
    pub doc: &'static str,
}

impl PortSpec {
    /// A required port.
    pub const fn new(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec {
            name,
            ty,
            optional: false,
            doc,
        }
    }

    /// An input that may stay unconnected.
    pub const fn optional(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec {
            name,
            ty,
            optional: true,
            doc,
        }
    }
}

/// How a parameter is edited in the studio.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Widget {
    Slider,
    DragValue,
    Checkbox,
    TextLine,
    TextArea,
    Dropdown,
    /// A seed field with a "randomize" button and the fixed/from-run mode.
    SeedField,
    ColorPicker,
    /// A file picker; the value may also be a folder (batch) or `asset:<sha256>`.
    FilePicker,
    /// A file name template inside the output folder.
    OutputPath,
}

/// The type, range and default of a parameter.
#[derive(Debug)]
pub enum ParamKind {
    Int {
        min: i64,
        max: i64,
        default: i64,
    },
    Float {
        min: f64,
        max: f64,
        default: f64,
    },
    Bool {
        default: bool,
    },
    Text {
        default: &'static str,
    },
    Choice {
        options: &'static [&'static str],
        default: &'static str,
    },
    /// A seed: by default "from run" (run seed + offset), or a fixed value.
    Seed,
    /// An sRGB colour written `#rrggbb`.
    Color {
        default: &'static str,
    },
    /// An input file: a path relative to the graph file, a folder of images (each becomes a work
    /// item of the run), or `asset:<sha256>` naming an entry of the document's `assets`.
    InputFile {
        extensions: &'static [&'static str],
    },
    /// A file name template relative to the output folder; see [`OUTPUT_TEMPLATE_VARS`].
    OutputTemplate {
        default: &'static str,
    },
}

/// The variables an output file name template may use, as `{name}` or, for numbers, `{name:0N}`
/// (zero-padded to N digits).
pub const OUTPUT_TEMPLATE_VARS: &[(&str, &str)] = &[
    (
        "graph",
        "the graph's title (or file name), made safe for file names",
    ),
    ("node", "the id of the saving node"),
    ("run", "the run id in the store"),
    (
        "item",
        "the index of the work item within the run (variation × folder item × sweep cell)",
    ),
    ("seed", "the run seed of the work item"),
    ("date", "the UTC date, YYYYMMDD"),
    ("time", "the UTC time, HHMMSS"),
];

/// A named parameter of a node kind.
#[derive(Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub widget: Widget,
    pub doc: &'static str,
    /// For the upper end of a range: the parameter of the same node that holds the lower end.
    /// [`crate::validate()`] refuses a lower end above the upper one.
    pub at_least: Option<&'static str>,
    /// The kind of file the value names, when it names one: checked to exist before a run
    /// (`engine::run::missing_files`) and named that way in messages.
    pub file: Option<FileRole>,
    /// The parameter may also be fed by a link: the node then has an optional input port of the
    /// parameter's name, typed [`PortType::of_param`] (see [`NodeSpec::input_ports`]). A linked
    /// Text replaces the parameter's own text, which acts as a template: [`TEXT_PLACEHOLDER`]
    /// marks where the linked text goes ([`fill_template`]); a linked number replaces the value.
    pub input: bool,
}

/// Where a linked Text goes in the text of a parameter that is an input ([`ParamSpec::input`]).
pub const TEXT_PLACEHOLDER: &str = "{input}";

/// Other spellings of [`TEXT_PLACEHOLDER`]: `{caption}`, as in the template the inspection loop
/// was specified with (`{caption}, deep scratch` fed by a Caption node).
pub const TEXT_PLACEHOLDER_ALIASES: &[&str] = &["{caption}"];

/// The text of a parameter fed by a linked Text: `template` with every [`TEXT_PLACEHOLDER`] (or
/// alias) replaced by `input`; a template without a placeholder is appended after the input,
/// separated by `", "` (so `deep scratch` with the caption `brushed metal` gives
/// `brushed metal, deep scratch`); an empty template gives the input alone.
pub fn fill_template(template: &str, input: &str) -> String {
    let marks = std::iter::once(TEXT_PLACEHOLDER).chain(TEXT_PLACEHOLDER_ALIASES.iter().copied());
    if marks.clone().any(|m| template.contains(m)) {
        marks.fold(template.to_string(), |t, m| t.replace(m, input))
    } else if template.trim().is_empty() {
        input.to_string()
    } else if input.trim().is_empty() {
        template.to_string()
    } else {
        format!("{input}, {template}")
    }
}

#[cfg(test)]
mod template_tests {
    use super::fill_template;

    #[test]
    fn placeholders_and_appending() {
        let c = "brushed metal, 2 scratches";
        assert_eq!(
            fill_template("{caption}, deep scratch", c),
            "brushed metal, 2 scratches, deep scratch"
        );
        assert_eq!(
            fill_template("photo of {input}", c),
            format!("photo of {c}")
        );
        assert_eq!(fill_template("{input} / {caption}", "x"), "x / x");
        assert_eq!(
            fill_template("deep scratch", c),
            format!("{c}, deep scratch")
        );
        assert_eq!(fill_template("", c), c);
        assert_eq!(fill_template("deep scratch", " "), "deep scratch");
    }
}

/// The kind of file a parameter names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileRole {
    /// A Stable Diffusion checkpoint (a `.safetensors` file or a diffusers folder); required.
    Checkpoint,
    /// A LoRA `.safetensors`; required.
    Lora,
    /// A separate VAE; optional (empty = the checkpoint's own).
    Vae,
    /// A diffusers folder describing a single-file checkpoint; optional.
    DiffusersConfig,
    /// An image file, or a folder of them; required.
    Image,
    /// A mask image, or a folder of them; required.
    Mask,
    /// A folder of images; required.
    ImageFolder,
    /// A background-removal network in the model folders (by name); required.
    BackgroundModel,
    /// A trained defect detector (`train-classifier` / `train-segmenter` output, a
    /// `.safetensors` file), by path or by name in the model folders; required.
    Detector,
    /// An image-captioning model folder (BLIP: `config.json`, `model.safetensors`, tokenizer),
    /// by path or by name in the model folders; optional (empty = the node does without).
    CaptionModel,
    /// A ControlNet (a diffusers folder or a single `.safetensors`), by path or by name in the
    /// model folders; required.
    ControlNet,
}

impl FileRole {
    /// The word for it in messages ("checkpoint", "LoRA", …).
    pub fn noun(self) -> &'static str {
        match self {
            FileRole::Checkpoint => "checkpoint",
            FileRole::Lora => "LoRA",
            FileRole::Vae => "VAE",
            FileRole::DiffusersConfig => "diffusers config folder",
            FileRole::Image => "image",
            FileRole::Mask => "mask image",
            FileRole::ImageFolder => "image folder",
            FileRole::BackgroundModel => "background-removal model",
            FileRole::Detector => "detector model",
            FileRole::CaptionModel => "captioning model",
            FileRole::ControlNet => "ControlNet",
        }
    }

    /// True when an empty value is allowed (the node then does without the file).
    pub fn optional(self) -> bool {
        matches!(
            self,
            FileRole::Vae | FileRole::DiffusersConfig | FileRole::CaptionModel
        )
    }

    /// True for files found in the model folders by name (not only by path).
    pub fn is_model(self) -> bool {
        matches!(
            self,
            FileRole::Checkpoint
                | FileRole::Lora
                | FileRole::Vae
                | FileRole::BackgroundModel
                | FileRole::Detector
                | FileRole::CaptionModel
                | FileRole::ControlNet
        )
    }
}

impl ParamSpec {
    pub const fn int(
        name: &'static str,
        min: i64,
        max: i64,
        default: i64,
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            name,
            kind: ParamKind::Int { min, max, default },
            widget: Widget::DragValue,
            doc,
            at_least: None,
            file: None,
            input: false,
        }
    }
    pub const fn float(
        name: &'static str,
        min: f64,
        max: f64,
        default: f64,
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            name,
            kind: ParamKind::Float { min, max, default },
            widget: Widget::Slider,
            doc,
            at_least: None,
            file: None,
            input: false,
        }
    }
    pub const fn bool(name: &'static str, default: bool, doc: &'static str) -> Self {
        ParamSpec {
            name,
            kind: ParamKind::Bool { default },
            widget: Widget::Checkbox,
            doc,
            at_least: None,
            file: None,
            input: false,
        }
    }
    pub const fn text(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        ParamSpec {
            name,
            kind: ParamKind::Text { default },
            widget: Widget::TextLine,
            doc,
            at_least: None,
            file: None,
            input: false,
        }
    }
    pub const fn choice(
        name: &'static str,
        options: &'static [&'static str],
        default: &'static str,
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            name,
            kind: ParamKind::Choice { options, default },
            widget: Widget::Dropdown,
            doc,
            at_least: None,
            file: None,
            input: false,
        }
    }
    pub const fn seed(name: &'static str, doc: &'static str) -> Self {
        ParamSpec {
            name,
            kind: ParamKind::Seed,
            widget: Widget::SeedField,
            doc,
            at_least: None,
            file: None,
            input: false,
        }
    }
    pub const fn color(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        ParamSpec {
            name,
            kind: ParamKind::Color { default },
            widget: Widget::ColorPicker,
            doc,
            at_least: None,
            file: None,
            input: false,
        }
    }
    pub const fn input_file(
        name: &'static str,
        extensions: &'static [&'static str],
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            name,
            kind: ParamKind::InputFile { extensions },
            widget: Widget::FilePicker,
            doc,
            at_least: None,
            file: None,
            input: false,
        }
    }
    pub const fn output_template(
        name: &'static str,
        default: &'static str,
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            name,
            kind: ParamKind::OutputTemplate { default },
            widget: Widget::OutputPath,
            doc,
            at_least: None,
            file: None,
            input: false,
        }
    }
    /// The upper end of a range whose lower end is the parameter `min` (see
    /// [`ParamSpec::at_least`]).
    pub const fn at_least(mut self, min: &'static str) -> Self {
        self.at_least = Some(min);
        self
    }

    /// The parameter names a file of this kind (see [`ParamSpec::file`]).
    pub const fn names_file(mut self, role: FileRole) -> Self {
        self.file = Some(role);
        self
    }

    /// The parameter may also be fed by a link (see [`ParamSpec::input`]).
    pub const fn as_input(mut self) -> Self {
        self.input = true;
        self
    }

    /// The same parameter edited with another widget.
    pub const fn with_widget(mut self, widget: Widget) -> Self {
        self.widget = widget;
        self
    }

    /// The value used when a document does not set this parameter.
    pub fn default_value(&self) -> ParamValue {
        match &self.kind {
            ParamKind::Int { default, .. } => ParamValue::Int(*default),
            ParamKind::Float { default, .. } => ParamValue::Float(*default),
            ParamKind::Bool { default } => ParamValue::Bool(*default),
            ParamKind::Text { default }
            | ParamKind::Color { default }
            | ParamKind::OutputTemplate { default } => ParamValue::Text((*default).to_string()),
            ParamKind::Choice { default, .. } => ParamValue::Text((*default).to_string()),
            ParamKind::InputFile { .. } => ParamValue::Text(String::new()),
            ParamKind::Seed => ParamValue::Seed(SeedValue::Run { offset: 0 }),
        }
    }

    /// A short description of the accepted values, for error messages and listings.
    pub fn expected(&self) -> String {
        match &self.kind {
            ParamKind::Int { min, max, .. } => format!("an integer in {min}..={max}"),
            ParamKind::Float { min, max, .. } => format!("a number in {min}..={max}"),
            ParamKind::Bool { .. } => "true or false".into(),
            ParamKind::Text { .. } => "a string".into(),
            ParamKind::Choice { options, .. } => format!("one of {}", options.join(", ")),
            ParamKind::Seed => {
                "a seed: an integer (fixed), {\"mode\":\"fixed\",\"value\":N} or {\"mode\":\"run\",\"offset\":N}"
                    .into()
            }
            ParamKind::Color { .. } => "a colour \"#rrggbb\"".into(),
            ParamKind::InputFile { .. } => "a file path, a folder, or asset:<sha256>".into(),
            ParamKind::OutputTemplate { .. } => {
                "a relative file name template inside the output folder".into()
            }
        }
    }

    /// Parses a value typed by a user (`--set`, `--sweep`, a text field) for this parameter.
    /// Seeds accept `123` (fixed), `run` or `run+3` (from the run seed with an offset).
    pub fn parse_value(&self, text: &str) -> Result<ParamValue, String> {
        let t = text.trim();
        match &self.kind {
            ParamKind::Int { .. } => t
                .parse::<i64>()
                .map(ParamValue::Int)
                .map_err(|_| format!("expected {}", self.expected())),
            ParamKind::Float { .. } => t
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(ParamValue::Float)
                .ok_or_else(|| format!("expected {}", self.expected())),
            ParamKind::Bool { .. } => match t {
                "true" | "1" | "yes" | "on" => Ok(ParamValue::Bool(true)),
                "false" | "0" | "no" | "off" => Ok(ParamValue::Bool(false)),
                _ => Err(format!("expected {}", self.expected())),
            },
            ParamKind::Seed => {
                if t == "run" {
                    Ok(ParamValue::Seed(SeedValue::Run { offset: 0 }))
                } else if let Some(off) = t.strip_prefix("run+") {
                    off.parse::<u64>()
                        .map(|offset| ParamValue::Seed(SeedValue::Run { offset }))
                        .map_err(|_| format!("expected {}", self.expected()))
                } else {
                    t.parse::<u64>()
                        .map(|value| ParamValue::Seed(SeedValue::Fixed { value }))
                        .map_err(|_| "expected a seed: N, run or run+N".to_string())
                }
            }
            _ => Ok(ParamValue::Text(text.to_string())),
        }
    }
}

/// A node kind: declared once, read by the editor, the executor, the CLI and the file format.
#[derive(Debug)]
pub struct NodeSpec {
    /// The kind's name, e.g. `"LoadImage"`.
    pub kind: &'static str,
    /// Bumped when the kind's ports or parameters change meaning; older nodes are migrated.
    pub version: u32,
    pub category: &'static str,
    /// One paragraph of help; the studio shows it as the tooltip.
    pub doc: &'static str,
    pub inputs: &'static [PortSpec],
    pub outputs: &'static [PortSpec],
    pub params: &'static [ParamSpec],
    /// Same inputs and parameters give the same outputs. Non-deterministic nodes add their node id
    /// to the cache key.
    pub deterministic: bool,
    /// A sink with a side effect (saving files). Sinks are the default targets of a run and are
    /// never served from the cache.
    pub sink: bool,
}

impl NodeSpec {
    /// `kind@version`, the identity that goes into cache keys.
    pub fn id(&self) -> String {
        format!("{}@{}", self.kind, self.version)
    }
    /// An input port by name: a declared input or a parameter that is an input.
    pub fn input(&'static self, name: &str) -> Option<&'static PortSpec> {
        self.input_ports().iter().find(|p| p.name == name)
    }

    /// Every input port: the declared [`NodeSpec::inputs`], then one optional port per
    /// parameter that is an input ([`ParamSpec::input`]), named and documented like the
    /// parameter. Made once per kind and kept for the life of the process.
    pub fn input_ports(&'static self) -> &'static [PortSpec] {
        if !self.params.iter().any(|p| p.input) {
            return self.inputs;
        }
        static PORTS: OnceLock<Mutex<HashMap<usize, &'static [PortSpec]>>> = OnceLock::new();
        let key = self as *const NodeSpec as usize;
        let mut map = match PORTS.get_or_init(Default::default).lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(key).or_insert_with(|| {
            let ports: Vec<PortSpec> = self
                .inputs
                .iter()
                .map(|p| PortSpec { ..*p })
                .chain(self.params.iter().filter(|p| p.input).map(|p| PortSpec {
                    name: p.name,
                    ty: PortType::of_param(&p.kind),
                    optional: true,
                    doc: p.doc,
                }))
                .collect();
            Vec::leak(ports)
        })
    }

    /// The parameter an input port feeds, when the port is a parameter's.
    pub fn param_input(&self, port: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.input && p.name == port)
    }
    pub fn output(&self, name: &str) -> Option<&'static PortSpec> {
        self.outputs.iter().find(|p| p.name == name)
    }
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// A set of node kinds, looked up by kind name.
#[derive(Debug, Clone)]
pub struct Catalogue {
    specs: Vec<&'static NodeSpec>,
}

impl Catalogue {
    /// A catalogue of the given kinds (tests use this for fake kinds).
    pub fn new(specs: Vec<&'static NodeSpec>) -> Catalogue {
        Catalogue { specs }
    }

    /// The kinds that ship with Defect Studio.
    pub fn builtin() -> Catalogue {
        Catalogue {
            specs: crate::builtin::ALL.to_vec(),
        }
    }

    pub fn get(&self, kind: &str) -> Option<&'static NodeSpec> {
        self.specs.iter().copied().find(|s| s.kind == kind)
    }

    pub fn specs(&self) -> &[&'static NodeSpec] {
        &self.specs
    }

    /// The nodes a run executes when it names none (with what they need): every sink, and
    /// every check ([`crate::inspect::CHECKS`]: nodes that judge the work item, whose notes and
    /// rejections are their effect even when nothing reads their outputs). In id order.
    pub fn default_targets<'d>(&self, doc: &'d crate::graph::GraphDoc) -> Vec<&'d str> {
        doc.nodes
            .iter()
            .filter(|(_, n)| {
                self.get(&n.kind)
                    .is_some_and(|s| s.sink || crate::inspect::is_check(s))
            })
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// Categories in first-seen order, for menus.
    pub fn categories(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for s in &self.specs {
            if !out.contains(&s.category) {
                out.push(s.category);
            }
        }
        out
    }
}

/// A node's input ports: its kind's declared inputs, the parameters the kind declares as
/// inputs ([`ParamSpec::as_input`]), then each parameter the user turned into an input
/// (`node.param_inputs`), in parameter order. Names in `param_inputs` that are no parameter of
/// the kind are left out (validation reports them).
pub fn input_ports(spec: &'static NodeSpec, node: &crate::graph::NodeDoc) -> Vec<PortSpec> {
    let mut ports: Vec<PortSpec> = spec
        .input_ports()
        .iter()
        .map(|p| PortSpec { ..*p })
        .collect();
    for p in spec.params {
        if node.param_inputs.contains(p.name) && !ports.iter().any(|q| q.name == p.name) {
            ports.push(PortSpec {
                name: p.name,
                ty: PortType::of_param(&p.kind),
                optional: true,
                doc: p.doc,
            });
        }
    }
    ports
}

/// The parameter input port `port` of `node` feeds: one the kind declares as an input, or one
/// the user turned into an input (`node.param_inputs`).
pub fn param_port(
    spec: &'static NodeSpec,
    node: &crate::graph::NodeDoc,
    port: &str,
) -> Option<&'static ParamSpec> {
    spec.param_input(port).or_else(|| {
        node.param_inputs
            .contains(port)
            .then(|| spec.param(port))
            .flatten()
    })
}

/// Whether a parameter fed by a link accepts a value of type `from`: Int and Bool take Int,
/// Float takes Float or Int, Seed takes Seed or Int, Choice takes Choice or Text, and every
/// parameter written as text (Text, Color, files, output templates) takes Text.
pub fn param_accepts(kind: &ParamKind, from: PortType) -> bool {
    match kind {
        ParamKind::Int { .. } | ParamKind::Bool { .. } => from == PortType::Int,
        ParamKind::Float { .. } => matches!(from, PortType::Float | PortType::Int),
        ParamKind::Seed => matches!(from, PortType::Seed | PortType::Int),
        ParamKind::Choice { .. } => matches!(from, PortType::Choice | PortType::Text),
        ParamKind::Text { .. }
        | ParamKind::Color { .. }
        | ParamKind::InputFile { .. }
        | ParamKind::OutputTemplate { .. } => from == PortType::Text,
    }
}
