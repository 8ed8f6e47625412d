"""Models: DINOv2-style ViT encoder, DPT head, mask guidance, the ADE variants."""
