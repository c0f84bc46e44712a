"""ICP partitions, all registered from the data by the `features/icp_cutoffs` asset:

* `icp_division`: the divisions of star.dim_product that have sales (a new division in the SKU
  map is a new partition, no code change);
* `icp_feature_cutoff`: every cutoff a feature matrix is built for (training, evaluation, score);
* `icp_model_cutoff`: the cutoffs that get a model (evaluation cutoffs and the scoring cutoff).

Feature matrices and models are partitioned cutoff × division; whitespace by cutoff.
"""

from __future__ import annotations

import dagster as dg

divisions = dg.DynamicPartitionsDefinition(name="icp_division")
feature_cutoffs = dg.DynamicPartitionsDefinition(name="icp_feature_cutoff")
model_cutoffs = dg.DynamicPartitionsDefinition(name="icp_model_cutoff")

feature_partitions = dg.MultiPartitionsDefinition({"cutoff": feature_cutoffs, "division": divisions})
model_partitions = dg.MultiPartitionsDefinition({"cutoff": model_cutoffs, "division": divisions})

# A model at cutoff c reads the feature rows of earlier cutoffs of its own division.
MODEL_READS_FEATURES = dg.MultiPartitionMapping({
    "cutoff": dg.DimensionPartitionMapping("cutoff", dg.AllPartitionMapping()),
    "division": dg.DimensionPartitionMapping("division", dg.IdentityPartitionMapping()),
})

INVALID = ("|", ",", "[", "]", "...")  # characters Dagster partition keys cannot hold


def by_cutoff(partition_keys) -> dict[str, list[str]]:
    """Multi-partition keys of a run grouped: cutoff -> divisions."""
    out: dict[str, list[str]] = {}
    for key in partition_keys:
        dims = key.keys_by_dimension if hasattr(key, "keys_by_dimension") else dict(
            zip(("cutoff", "division"), str(key).split("|")))
        out.setdefault(dims["cutoff"], []).append(dims["division"])
    return {c: sorted(ds) for c, ds in sorted(out.items())}
