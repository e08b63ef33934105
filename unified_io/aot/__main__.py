"""Does a config fit a TPU slice? Compile its steps for the slice here, on a CPU machine.

  python -m unified_io.aot --config=configs/xl.py --topology=v4-1024 --config.mesh.model=4

Needs the TPU compiler: `pip install -r requirements-aot.txt` (libtpu; no TPU attached). The
slice is an accelerator type (v4-1024, v5litepod-256, v5p-256, v6e-256) or a generation and
chip grid (v4:4x8x16); unified_io/common/tpu_chips.py has the generations. The command
builds the trainer's own train step (unified_io/train/trainer.py: the same state, shardings,
donation and in-step VQ-GAN tokenizer) and the evaluators' image decoding
(generation.generate_image: the KV-cached decoder over text then 256 image codes, the
longest decode) over a mesh of the slice's devices, with abstract inputs at the config's
shapes, and lets the TPU compiler lay them out. It prints per device what the compiled
programs hold: parameters, optimiser state, temporaries (activations and workspace) and
the total against the chip's HBM, the train step's FLOPs, and the step time and tokens/s
that the chip's peak implies at --utilisation. Nothing is read but the config: no
tokenizer, VQ-GAN weights (the `vqgan.preset` gives its shapes) or data.

Fitting is against the TPU compiler's own limit per chip (tpu_chips.GENERATIONS); a step
over it is refused by the compiler, and its inputs and the temporaries the compiler asked for
are reported instead. Decoding is also counted as the trainer's evaluators run it, beside
the optimiser state and the VQ-GAN.

Exit status: 0 everything fits; 1 refused (bad command line, config or slice; libtpu
missing); 2 a step does not fit: the message says which settings would shrink what
dominates (remat, scan, bf16 activations, model parallelism, FSDP, batch per replica).
"""

import json
import os
import sys

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from unified_io.aot import report
from unified_io.aot import steps
from unified_io.common import tpu_chips
from unified_io.train import config_check

DEFAULT_CONFIG = "configs/tiny.py"
DEFAULT_UTILISATION = 0.5
EXIT_DOES_NOT_FIT = 2


def _stop(text, code=1):
  """Leaves with `text` as the message and exit status `code`: no traceback."""
  sys.stdout.flush()
  sys.stderr.write(f"unified_io.aot: {text}\n")
  sys.exit(code)


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # an unknown flag, a value of the wrong type, no --topology
    _stop(f"{e} (--helpfull lists the flags)")
  except Exception as e:  # pylint: disable=broad-except  # from the config file
    _stop(config_check.last_line(e))


def _main(argv):
  if len(argv) > 1:
    _stop(f"unexpected arguments: {argv[1:]}")
  if "JAX_PLATFORMS" not in os.environ:
    # Only the steps are for the TPU; all else runs on the CPU, so a TPU VM's chips (a run
    # may be using them) and libtpu's lock on them stay untouched.
    jax.config.update("jax_platforms", "cpu")
  utilisation = _UTILISATION.value
  if not 0 < utilisation <= 1:
    _stop(f"--utilisation={utilisation} must be in (0, 1]")
  try:
    tpu_slice = tpu_chips.parse_slice(_TOPOLOGY.value)
    analysis = steps.analyse(_CONFIG.value, tpu_slice, _DECODE.value, _DECODE_BATCH.value)
  except (ValueError, tpu_chips.LibtpuMissing) as e:  # ConfigError is a ValueError
    _stop(str(e))
  print(report.format_report(analysis, utilisation))
  print(report.verdict(analysis), flush=True)
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(report.to_json(analysis, utilisation), f, indent=2)
  if not analysis.fits():
    _stop("does not fit; see above", EXIT_DOES_NOT_FIT)


if __name__ == "__main__":
  found = config_check.command_line_problems(sys.argv, DEFAULT_CONFIG)
  if found:
    _stop(found[0] if len(found) == 1 else "bad command line:\n  " + "\n  ".join(found))
  _CONFIG = config_flags.DEFINE_config_file("config", DEFAULT_CONFIG, "Config file[:variant].")
  _TOPOLOGY = flags.DEFINE_string(
    "topology", None, "TPU slice: v4-1024, v5litepod-256, v5p-256, v6e-256, v4:4x8x16, ..."
  )
  _UTILISATION = flags.DEFINE_float(
    "utilisation", DEFAULT_UTILISATION, "Share of peak FLOP/s for the implied step time."
  )
  _DECODE = flags.DEFINE_bool("decode", True, "Also compile image decoding.")
  _DECODE_BATCH = flags.DEFINE_integer(
    "decode_batch", None, "Global batch of the decoding step (default: the train batch)."
  )
  _JSON = flags.DEFINE_string("json", None, "Also write the numbers to this JSON file.")
  flags.mark_flag_as_required("topology")
  app.run(_main, flags_parser=_parse_flags)
