"""Logical axis names and their default mapping onto a (data, model) device mesh.

Every parameter and key activation of the network is annotated with the logical names
below (the t5x vocabulary). Sharding is then a config choice: a list of
(logical name, mesh axis or None) rules, never a change to model code.
"""

BATCH = "batch"
LENGTH = "length"
EMBED = "embed"
MLP = "mlp"
HEADS = "heads"
KV = "kv"
JOINED_KV = "joined_kv"
VOCAB = "vocab"
# Flattened 16x16x3 pixels of one image patch: small, so never sharded.
IMAGE_PATCH = "image_patch"
RELPOS_BUCKETS = "relpos_buckets"
# Leading axis of stacked per-layer parameters when layers are scanned.
LAYERS = "layers"

DATA_AXIS = "data"
MODEL_AXIS = "model"

# t5x's standard rules for 1-D parameter partitioning with data-parallel activations.
STANDARD_RULES = (
  (BATCH, DATA_AXIS),
  (VOCAB, MODEL_AXIS),
  (EMBED, None),
  (MLP, MODEL_AXIS),
  (HEADS, MODEL_AXIS),
  (KV, None),
  (JOINED_KV, MODEL_AXIS),
  (LENGTH, None),
  (IMAGE_PATCH, None),
  (RELPOS_BUCKETS, None),
  (LAYERS, None),
)

# Parameter sharding over the data axis as well (t5x's 2-D parameter partitioning, FSDP):
# every parameter with an `embed` dimension splits it over the data devices, so parameters
# and optimiser state take 1/(data x model) of their size per device instead of 1/model.
# Activations keep their batch on the data axis: flax assigns each mesh axis once per array,
# in rule order, so BATCH's earlier rule takes `data` and an activation's `embed` stays
# whole. XLA then gathers each weight where it is used and reduce-scatters its gradient.
FSDP_RULE = (EMBED, DATA_AXIS)


def with_fsdp(rules):
  """`rules` with FSDP_RULE placed before their first `embed` rule.

  ValueError if no `batch` rule onto the data axis comes first: then activations would
  split their embedding over the data axis instead of their batch.
  """
  rules = tuple(tuple(rule) for rule in rules)
  if FSDP_RULE in rules:
    return rules
  names = [name for name, _ in rules]
  at = names.index(EMBED) if EMBED in names else len(rules)
  if (BATCH, DATA_AXIS) not in rules[:at]:
    raise ValueError(
      f"config.mesh.fsdp needs a ({BATCH!r}, {DATA_AXIS!r}) rule before the first "
      f"{EMBED!r} rule of config.mesh.rules, got {rules}"
    )
  return rules[:at] + (FSDP_RULE,) + rules[at:]
