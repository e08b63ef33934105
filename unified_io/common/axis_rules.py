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
