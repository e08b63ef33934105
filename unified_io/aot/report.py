"""What the compiled steps say, for people: the table, the verdict and what would help."""

from unified_io.aot.steps import Analysis
from unified_io.common import tpu_chips

# Above this share of the compiler's limit a step is reported as tight: XLA may lay out the
# same program a little differently on another libtpu.
TIGHT = 0.95


# ------------------------------------------------------------------------------- verdicts


def advice(analysis: Analysis) -> list:
  """Settings that would shrink each step that does not fit, those for its biggest part first."""
  config, hbm = analysis.config, analysis.hbm
  model_cfg, mesh = config.model, config.mesh
  lines = []
  train = analysis.train
  if train.memory["total"] > hbm:
    state = train.parts["parameters"] + train.parts["optimiser_state"]
    state_lines, temp_lines = [], []
    if not mesh.get("fsdp", False) and analysis.mesh_shape["data"] > 1:
      state_lines.append(
        "--config.mesh.fsdp=True: split parameters and optimiser state over the data axis "
        f"too ({analysis.mesh_shape['data']} devices)"
      )
    bigger = 2 * analysis.mesh_shape["model"]
    if analysis.tpu_slice.chips % bigger == 0 and model_cfg.num_heads % bigger == 0:
      state_lines.append(
        f"--config.mesh.model={bigger}: more model parallelism (parameters, optimiser "
        "state and per-layer activations split over more devices)"
      )
    stronger = {"none": "minimal", "minimal": "full"}.get(model_cfg.remat_policy)
    if stronger:
      temp_lines.append(
        f"--config.model.remat_policy={stronger}: recompute layer activations in the "
        "backward pass instead of keeping them"
      )
    if not model_cfg.scan_layers:
      temp_lines.append(
        "--config.model.scan_layers=True: one layer's program looped, so its buffers "
        "are reused (with remat: one layer's activations live at a time)"
      )
    if model_cfg.dtype == "float32":
      temp_lines.append("--config.model.dtype=bfloat16: half-size activations")
    per_replica = config.train.batch_size // analysis.mesh_shape["data"]
    if per_replica > 1:
      temp_lines.append(
        f"a smaller batch per data replica (now {per_replica}): a smaller "
        "--config.train.batch_size, or a bigger slice for the same batch"
      )
    first = state > train.memory["temporaries"]
    lines += (state_lines + temp_lines) if first else (temp_lines + state_lines)
  decoding = analysis.decode
  if decoding is not None and analysis.decode_in_training > hbm:
    lines.append(
      f"decoding: a smaller --decode_batch (now {decoding.batch_size}; evaluators: "
      "config.evals.*.batch_size), or --config.mesh.model / --config.mesh.fsdp to split "
      "the state further"
    )
  return lines


def _unit(values):
  """(name, bytes) of the unit a table of byte counts reads best in."""
  return ("GiB", tpu_chips.GiB) if max(values) >= tpu_chips.GiB else ("MiB", 2**20)


def _gib(n) -> str:
  return f"{n / tpu_chips.GiB:.2f} GiB"


def format_report(analysis: Analysis, utilisation: float) -> str:
  g, s, config = analysis.tpu_slice.generation, analysis.tpu_slice, analysis.config
  m, mesh = config.model, analysis.mesh_shape
  steps, limit = analysis.steps, analysis.hbm
  per_replica = config.train.batch_size // mesh["data"]
  lines = [
    f"{s.describe()}, {g.device_kind}: {g.hbm_gib:g} GiB HBM per chip ({g.program_hbm_gib:g} "
    f"GiB for one program, the compiler's limit), {g.peak_bf16_flops / 1e12:.0f} TFLOP/s bf16",
    f"mesh data={mesh['data']} x model={mesh['model']}, fsdp "
    f"{'on' if config.mesh.get('fsdp', False) else 'off'}; model dtype {m.dtype}, remat "
    f"{m.remat_policy}, scan_layers {m.scan_layers}; train batch {config.train.batch_size} "
    f"({per_replica} per data replica)",
    "",
  ]
  unit, scale = _unit([st.memory["total"] for st in steps])
  heads = [f"{st.name} (batch {st.batch_size})" for st in steps]
  width = max(len(h) for h in heads) + 2
  row = lambda label, cells: f"  {label:<27}" + "".join(f"{c:>{width}}" for c in cells)
  size = lambda n: f"{n / scale:.2f}"
  # A refused step has no memory analysis: only its inputs and the compiler's lower bound.
  xla = lambda st, key: "-" if st.refused else size(st.memory[key])
  at_least = lambda st, key: (">=" if st.refused else "") + size(st.memory[key])
  lines.append(row(f"per device, {unit}", heads))
  lines.append(row("arguments (XLA)", [xla(st, "arguments") for st in steps]))
  for key, label in (
    ("parameters", "  parameters"),
    ("optimiser_state", "  optimiser state"),
    ("vqgan_parameters", "  VQ-GAN parameters"),
    ("batch", "  batch"),
  ):
    lines.append(row(label, [size(st.parts[key]) if key in st.parts else "-" for st in steps]))
  not_donated = lambda st: "-" if st.refused else size(st.memory["outputs"] - st.memory["aliased"])
  lines.append(row("outputs not donated (XLA)", [not_donated(st) for st in steps]))
  lines.append(row("temporaries (XLA)", [at_least(st, "temporaries") for st in steps]))
  lines.append(row("code (XLA)", [xla(st, "generated_code") for st in steps]))
  lines.append(row("total (XLA)", [at_least(st, "total") for st in steps]))
  lines.append(row("of the program limit", [f"{st.memory['total'] / limit:.1%}" for st in steps]))
  if analysis.decode is not None:
    during = analysis.decode_in_training
    lines.append(
      f"  decoding during training, beside the optimiser state and VQ-GAN: {size(during)} "
      f"{unit} ({during / limit:.1%})"
    )
  lines.append("")
  train = analysis.train
  if train.refused:
    lines.append(f"train step: refused by the TPU compiler: {train.refused}")
  else:
    step_s = train.flops / (g.peak_bf16_flops * utilisation)
    lines += [
      f"train step: {train.flops / 1e12:.4g} TFLOP per device (XLA cost analysis; remat's",
      f"  recomputation included); at {utilisation:.0%} of peak: {step_s:.4g} s per step,",
      f"  {train.tokens / step_s:,.0f} tokens/s and {train.batch_size / step_s:,.1f} examples/s"
      " for the slice (tokens: text inputs,",
      "  text and image targets at full length; the trainer's progress line counts non-padding)",
    ]
  if analysis.decode is not None:
    if analysis.decode.refused:
      lines.append(f"decoding: refused by the TPU compiler: {analysis.decode.refused}")
    else:
      lines.append("decoding: memory only (bound by HBM bandwidth: peak FLOP/s implies no time)")
  lines.append(
    "compiled here in " + " + ".join(f"{st.compile_s:.0f} s ({st.name})" for st in steps)
  )
  return "\n".join(lines)


def verdict(analysis: Analysis) -> str:
  parts = []
  for name, peak in analysis.peaks().items():
    share = peak / analysis.hbm
    state = "does NOT fit" if share > 1 else ("fits, tight" if share > TIGHT else "fits")
    parts.append(f"{name} {state} ({_gib(peak)}, {share:.1%} of {_gib(analysis.hbm)})")
  text = "; ".join(parts)
  knobs = advice(analysis)
  if knobs:
    text += "\nwhat would help, biggest share first:\n  " + "\n  ".join(knobs)
  return text


def to_json(analysis: Analysis, utilisation: float) -> dict:
  s = analysis.tpu_slice
  return {
    "topology": s.topology_name,
    "accelerator_type": s.accelerator_type,
    "chips": s.chips,
    "device_kind": s.generation.device_kind,
    "hbm_bytes": s.generation.hbm_bytes,
    "program_hbm_bytes": s.generation.program_hbm_bytes,
    "peak_bf16_flops": s.generation.peak_bf16_flops,
    "utilisation": utilisation,
    "mesh": analysis.mesh_shape,
    "fits": analysis.fits(),
    "peaks": analysis.peaks(),
    "steps": {st.name: st.to_json() for st in analysis.steps},
  }
