"""Parameter counts of a config's model, without allocating the parameters.

  python -m unified_io.model --config=configs/xl.py [--json]

`total` is the network (the paper's Table 2 figure for small/base/large), `vqgan` the
frozen image tokenizer; the paper's XL figure (2925M) matches `total_with_vqgan`.
"""

import json

from absl import app
from absl import flags
from ml_collections import config_flags

from unified_io.model import builder

_CONFIG = config_flags.DEFINE_config_file("config", "configs/tiny.py", "Model config file.")
_JSON = flags.DEFINE_bool("json", False, "Print the counts as JSON with keys total and modules.")


def _main(_):
  config = _CONFIG.value
  counts = builder.parameter_counts(builder.abstract_params(builder.build(config)))
  counts["vqgan"] = builder.vqgan_parameter_count(config)
  counts["total_with_vqgan"] = counts["total"] + counts["vqgan"]
  if _JSON.value:
    print(json.dumps(counts, indent=2))
    return
  layout = builder.vocab_layout(config)
  path = flags.FLAGS["config"].config_filename
  print(
    f"config: {path}   vocabulary: {layout.total_size} ids "
    f"({layout.padded_text_size} text + {layout.image_vocab_size} image)"
  )
  for name, n in counts["modules"].items():
    print(f"  {name:<16s} {n:>15,d}  ({n / 1e6:8.2f}M)")
  print(f"  {'total':<16s} {counts['total']:>15,d}  ({counts['total'] / 1e6:8.2f}M)")
  print(
    f"  {'vqgan (frozen)':<16s} {counts['vqgan']:>15,d}  ({counts['vqgan'] / 1e6:8.2f}M)  "
    f"preset {config.vqgan.preset!r}"
  )
  print(
    f"  {'total + vqgan':<16s} {counts['total_with_vqgan']:>15,d}  "
    f"({counts['total_with_vqgan'] / 1e6:8.2f}M)"
  )


if __name__ == "__main__":
  app.run(_main)
