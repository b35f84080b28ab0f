//! A text dump of an ONNX graph (nodes, attributes, small constants, initializers)
//! for model-code work.

use std::collections::HashMap;

use super::super::onnx::{self, OnnxModel};

/// Text dump of the graph for model-code work: one line per node in file
/// order (`name op_type inputs -> outputs`), followed by the attributes of
/// each node, the values of small constant inputs (e.g. Resize scales), and
/// finally a list of initializers with their dtype and shape.
pub fn graph_dump(model: &OnnxModel) -> String {
    let inits: HashMap<&str, &onnx::OnnxTensor> = model
        .initializers
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    // Outputs of Constant nodes, so Resize scales/sizes can be shown.
    let mut constants: HashMap<&str, &onnx::OnnxTensor> = HashMap::new();
    for n in model.nodes.iter().filter(|n| n.op_type == "Constant") {
        if let (Some(out), Some(a)) = (n.outputs.first(), n.attributes.first()) {
            if let onnx::AttributeValue::Tensor(t) = &a.value {
                constants.insert(out.as_str(), t);
            }
        }
    }
    let mut s = String::new();
    s.push_str(&format!(
        "# ISNet medium ONNX graph: {} nodes, {} initializers\n",
        model.nodes.len(),
        model.initializers.len()
    ));
    for n in &model.nodes {
        s.push_str(&format!(
            "{} {} {} -> {}\n",
            if n.name.is_empty() {
                "<unnamed>"
            } else {
                &n.name
            },
            n.op_type,
            n.inputs.join(","),
            n.outputs.join(",")
        ));
        for a in &n.attributes {
            s.push_str(&format!(
                "    @{} = {}\n",
                a.name,
                onnx::format_attribute_value(&a.value)
            ));
        }
        if n.op_type != "Constant" {
            for (i, input) in n.inputs.iter().enumerate() {
                let t = constants
                    .get(input.as_str())
                    .or_else(|| inits.get(input.as_str()));
                if let Some(t) = t {
                    if t.element_count().is_some_and(|c| c <= 16) {
                        s.push_str(&format!(
                            "    input[{i}] {input} = {}\n",
                            onnx::format_tensor_summary(t)
                        ));
                    }
                }
            }
        }
    }
    s.push_str("\n# initializers (name dtype[dims])\n");
    for t in &model.initializers {
        s.push_str(&format!(
            "{} {}{:?}\n",
            t.name,
            onnx::data_type_name(t.data_type),
            t.dims
        ));
    }
    s
}
#[cfg(test)]
mod tests {
    use super::super::convert::tests::sample_model;
    use super::*;

    #[test]
    fn graph_dump_shows_attributes_and_constants() {
        let m = onnx::parse_model(&sample_model()).unwrap();
        let d = graph_dump(&m);
        assert!(
            d.contains("/stage1/rebnconvin/conv_s1/Conv Conv x,onnx::Conv_1,onnx::Conv_2 -> y\n"),
            "{d}"
        );
        assert!(d.contains("input[2] scales = f32[4] = [0, 0, 0, 0]"), "{d}");
        assert!(d.contains("onnx::Conv_1 f16[2, 3, 3, 3]"), "{d}");
    }
}
