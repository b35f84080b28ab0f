//! Recipes made from a gallery output: an Inpaint recipe with the output as its image (and a
//! painted mask), used by the output details' "send to" and by "paint a mask here".

use nodes::GraphDoc;

/// An Inpaint recipe over `image_png` (embedded as an asset), with `mask_png` as its painted
/// mask when given; the checkpoint, prompts and sampler settings come from `like` (the
/// output's own recipe) when it has a sampler, else the nodes' defaults.
pub fn inpaint_recipe(
    image_png: &[u8],
    mask_png: Option<&[u8]>,
    like: Option<&GraphDoc>,
) -> Result<GraphDoc, String> {
    let _ = (image_png, mask_png, like);
    Err("contract stub: inpaint_recipe is not built yet".into())
}
