"""What the report knows about the paper and the metrics: names, labels, the paper's two
tables, and its ordering claims as pairwise comparisons.

Variant names and display labels come from the variant registry
(`amodal_depth.models.variants`, `VariantSpec.label`); nothing here repeats them.
"""

from __future__ import annotations

from dataclasses import dataclass

from amodal_depth.models.variants import VARIANTS as _REGISTRY

VARIANTS: tuple[str, ...] = tuple(_REGISTRY)
"""The variants in the registry's order: the order of every table row and legend."""

VARIANT_LABELS: dict[str, str] = {name: spec.label for name, spec in _REGISTRY.items()}

REFERENCE_LABELS = {
    "mean_depth": "ref: mean-depth map",
    "visible_only": "ref: visible-only",
    "object_fill": "ref: object fill",
}
REFERENCE_ORDER = ("mean_depth", "visible_only", "object_fill")

LOWER_IS_BETTER = frozenset({"rmse", "abs_rel", "pixel_diff", "pc_rmse"})

METRIC_LABELS = {
    "rmse": "RMSE",
    "abs_rel": "AbsRel",
    "delta1": "δ1",
    "delta2": "δ2",
    "delta3": "δ3",
    "delta_1_05": "δ<1.05",
    "delta_1_10": "δ<1.10",
    "pixel_diff": "pixel diff",
    "hist_similarity": "hist",
    "fitness": "fitness",
    "pc_rmse": "pc RMSE",
}

CONSISTENCY_METRICS = ("pixel_diff", "hist_similarity", "fitness", "pc_rmse")

# The paper's numbers (its Tables 1 and 2): one run each, other data.
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "ade": {"delta1": 0.98366, "delta2": 0.99621, "delta3": 0.99907, "rmse": 0.13641},
    "ade_consistency": {"delta1": 0.98367, "delta2": 0.99624, "delta3": 0.99913, "rmse": 0.13634},
    "ade_mha": {"delta1": 0.93419, "delta2": 0.98504, "delta3": 0.99632, "rmse": 0.27293},
    "ade_multibatch": {"delta1": 0.98373, "delta2": 0.99613, "delta3": 0.99907, "rmse": 0.13601},
}
PAPER_TABLE2: dict[str, dict[str, float]] = {
    "ade": {"pixel_diff": 0.22461, "hist_similarity": 0.73115, "fitness": 0.48614,
            "pc_rmse": 0.01013},
    "ade_consistency": {"pixel_diff": 0.22354, "hist_similarity": 0.72514, "fitness": 0.48124,
                        "pc_rmse": 0.01005},
    "ade_mha": {"pixel_diff": 0.31577, "hist_similarity": 0.64568, "fitness": 0.19311,
                "pc_rmse": 0.01137},
    "ade_multibatch": {"pixel_diff": 0.21884, "hist_similarity": 0.73616, "fitness": 0.51720,
                       "pc_rmse": 0.00992},
}  # fmt: skip
PAPER_VARIANTS = tuple(PAPER_TABLE1)
"""The four variants the paper reports (its claims compare these)."""


def is_consistency(metric: str) -> bool:
    return metric in CONSISTENCY_METRICS


@dataclass(frozen=True)
class Claim:
    """'`better` beats `worse` on `metric`' (direction from LOWER_IS_BETTER)."""

    better: str
    worse: str
    metric: str


@dataclass(frozen=True)
class PaperStatement:
    """One sentence of the paper, as the pairwise claims it implies."""

    key: str
    text: str
    claims: tuple[Claim, ...]
    regions: tuple[str, ...]
    """Our regions it is tested on: the paper's whole image (`all`) and our headline."""


def paper_statements() -> list[PaperStatement]:
    """The paper's ordering claims (Section III), each turned into pairwise claims."""
    mb, cl, mha, ade = "ade_multibatch", "ade_consistency", "ade_mha", "ade"
    others = lambda v: [o for o in PAPER_VARIANTS if o != v]  # noqa: E731
    return [
        PaperStatement(
            "multibatch_consistency",
            "ADE + Multi-Batch is the most consistent model on every consistency metric.",
            tuple(Claim(mb, o, m) for m in CONSISTENCY_METRICS for o in others(mb)),
            ("all", "static"),
        ),
        PaperStatement(
            "multibatch_depth",
            "ADE + Multi-Batch has the best δ1 and RMSE.",
            tuple(Claim(mb, o, m) for m in ("delta1", "rmse") for o in others(mb)),
            ("all", "invisible"),
        ),
        PaperStatement(
            "consistency_depth",
            "ADE + Consistency Loss has the best δ2 and δ3.",
            tuple(Claim(cl, o, m) for m in ("delta2", "delta3") for o in others(cl)),
            ("all", "invisible"),
        ),
        PaperStatement(
            "mha_worst_depth",
            "ADE + MHA is the worst model on every depth metric (δ1, δ2, δ3, RMSE).",
            tuple(
                Claim(o, mha, m)
                for m in ("delta1", "delta2", "delta3", "rmse")
                for o in others(mha)
            ),
            ("all", "invisible"),
        ),
        PaperStatement(
            "mha_worst_consistency",
            "ADE + MHA is the worst model on every consistency metric.",
            tuple(Claim(o, mha, m) for m in CONSISTENCY_METRICS for o in others(mha)),
            ("all", "static"),
        ),
        PaperStatement(
            "encoder_decoder_helps",
            "Changing ADE's encoder/decoder (Multi-Batch) improves both depth quality and "
            "consistency over plain ADE.",
            tuple(Claim(mb, ade, m) for m in ("delta1", "rmse", *CONSISTENCY_METRICS)),
            ("all",),
        ),
    ]


def paper_says(claim: Claim) -> bool:
    """Whether the paper's own table orders the two variants as the claim says."""
    table = PAPER_TABLE2 if is_consistency(claim.metric) else PAPER_TABLE1
    a, b = table[claim.better][claim.metric], table[claim.worse][claim.metric]
    return a < b if claim.metric in LOWER_IS_BETTER else a > b
