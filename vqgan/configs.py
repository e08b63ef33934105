"""VQ-GAN size presets.

`official`: the taming-transformers `vqgan_imagenet_f16_16384` model that Unified-IO 1 ships under
  `discrete_vae` (allenai/unified-io-inference uio/configs.py VAE_CONFIG): 256x256 RGB -> 16x16
  codes from a 16384-entry codebook, ch 128, ch_mult (1,1,2,2,4), 2 residual blocks per level,
  attention at resolution 16, z_channels = embed_dim = 256.
`tiny`: the same architecture shrunk for tests and the embedded CPU default run: 64x64 RGB ->
  4x4 codes from a 512-entry codebook. It keeps five levels (four downsamplings, f16) so a
  grid cell covers the same 16x16 pixels as the official model, and attention at the code-grid
  resolution like the official model. Channels stay multiples of 32 because every GroupNorm
  has 32 groups.
`builtin`: the tokenizer the embedded default run ships (vqgan/weights/builtin, trained on the
  built-in scenes and their dense-label renderings by `python -m vqgan.train
  --config=configs/vqgan/builtin.py`): 64x64 RGB -> 8x8 codes from a 512-entry codebook
  (the tiny Unified-IO config's image vocabulary). Four levels (three downsamplings, f8) so the
  8x8-pixel cells can follow the scenes' small shapes and thin stick figures; ch 32 with
  ch_mult (1, 1, 1, 2) keeps the weights at 3.6 MB and a CPU train step affordable; attention
  at the code-grid resolution like the other presets.
"""

import dataclasses

GROUPS = 32  # GroupNorm groups, fixed by taming's Normalize()


@dataclasses.dataclass(frozen=True)
class VQGANConfig:
  resolution: int = 256  # input side; also decides where attention sits (attn_resolutions)
  in_channels: int = 3
  out_channels: int = 3
  ch: int = 128
  ch_mult: tuple = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2  # per encoder level; decoder levels have one more
  attn_resolutions: tuple = (16,)
  z_channels: int = 256
  embed_dim: int = 256
  n_codes: int = 16384
  beta: float = 0.25

  def __post_init__(self):
    # JSON gives lists; the module needs hashable tuples.
    object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
    object.__setattr__(self, "attn_resolutions", tuple(int(r) for r in self.attn_resolutions))
    problems = []
    if not self.ch_mult:
      problems.append("ch_mult is empty")
    if self.resolution % self.downsample_factor:
      problems.append(
        f"resolution {self.resolution} is not divisible by the downsampling "
        f"factor {self.downsample_factor}"
      )
    for m in sorted(set(self.ch_mult)):
      if (self.ch * m) % GROUPS:
        problems.append(
          f"ch * {m} = {self.ch * m} channels is not a multiple of the {GROUPS} GroupNorm groups"
        )
    if (
      min(
        self.resolution,
        self.in_channels,
        self.out_channels,
        self.ch,
        self.num_res_blocks,
        self.z_channels,
        self.embed_dim,
        self.n_codes,
      )
      <= 0
    ):
      problems.append("sizes must be positive")
    if problems:
      raise ValueError("Invalid VQ-GAN config: " + "; ".join(problems))

  @property
  def downsample_factor(self) -> int:
    return 2 ** (len(self.ch_mult) - 1)

  @property
  def grid_size(self) -> int:
    """Side of the code grid an image of `resolution` pixels encodes to."""
    return self.resolution // self.downsample_factor

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["ch_mult"] = list(self.ch_mult)
    d["attn_resolutions"] = list(self.attn_resolutions)
    return d

  @classmethod
  def from_dict(cls, d: dict, source="config") -> "VQGANConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    missing = sorted(known - set(d))
    if unknown or missing:
      raise ValueError(f"{source}: unknown VQ-GAN config keys {unknown}, missing {missing}")
    return cls(**d)


PRESETS = {
  "official": VQGANConfig(),
  "tiny": VQGANConfig(
    resolution=64,
    ch=32,
    ch_mult=(1, 1, 2, 2, 2),
    num_res_blocks=1,
    attn_resolutions=(4,),
    z_channels=32,
    embed_dim=32,
    n_codes=512,
  ),
  "builtin": VQGANConfig(
    resolution=64,
    ch=32,
    ch_mult=(1, 1, 1, 2),
    num_res_blocks=1,
    attn_resolutions=(8,),
    z_channels=32,
    embed_dim=32,
    n_codes=512,
  ),
}


def get_config(preset_or_config) -> VQGANConfig:
  """A preset name or a VQGANConfig -> VQGANConfig."""
  if isinstance(preset_or_config, VQGANConfig):
    return preset_or_config
  if isinstance(preset_or_config, str) and preset_or_config in PRESETS:
    return PRESETS[preset_or_config]
  raise ValueError(f"Unknown VQ-GAN preset {preset_or_config!r}; presets: {sorted(PRESETS)}")
