"""The paper's optimiser (§3.4) from optax pieces, with parameter freezing.

Adafactor with factored second moments, beta1 = 0.9, beta2 = 1 - k^-0.8 at step k, learning
rate `lr` for `constant_steps` steps then decaying as 1/sqrt(k), global-norm clipping at 1.0.
Parameters whose path matches `config.freeze` get no updates and no optimiser state.
"""

import re

import jax
import jax.numpy as jnp
import optax

# What config.optimizer.name may be (`build` implements each; config_check validates).
OPTIMIZERS = ("adafactor", "adamw")


def learning_rate_schedule(opt_config):
  """lr for k < constant_steps, then lr * sqrt(constant_steps / k) (the paper's 1/sqrt(k))."""
  lr, constant = opt_config.lr, opt_config.constant_steps
  warmup = opt_config.get("warmup_steps", 0)

  def schedule(step):
    k = jnp.maximum(jnp.asarray(step, jnp.float32), 1.0)
    value = lr * jnp.sqrt(constant / jnp.maximum(k, constant)) if constant else lr / jnp.sqrt(k)
    if warmup:
      value = value * jnp.minimum(1.0, k / warmup)
    return value

  return schedule


def path_name(path):
  return "/".join(str(getattr(p, "key", p)) for p in path)


def trainable_mask(params, freeze_regex):
  """True for parameters that are trained; False for those whose path matches the regex."""
  if not freeze_regex:
    return jax.tree.map(lambda _: True, params)
  try:
    pattern = re.compile(freeze_regex)
  except re.error as e:
    raise ValueError(f"config.freeze={freeze_regex!r} is not a valid regex: {e}") from e
  mask = jax.tree_util.tree_map_with_path(lambda p, _: not pattern.search(path_name(p)), params)
  if all(jax.tree.leaves(mask)):
    raise ValueError(
      f"config.freeze={freeze_regex!r} matches no parameter; paths look like "
      f"{path_name(jax.tree_util.tree_flatten_with_path(params)[0][0][0])}"
    )
  return mask


def build(opt_config, params, freeze_regex=""):
  """optax transformation for `params` (used for the mask only; may be abstract)."""
  name = opt_config.name
  schedule = learning_rate_schedule(opt_config)
  if name == "adafactor":
    inner = optax.adafactor(
      learning_rate=schedule,
      decay_rate=opt_config.decay_rate,
      momentum=opt_config.beta1 or None,
      multiply_by_parameter_scale=opt_config.parameter_scale,
      clipping_threshold=None,
      factored=True,
    )
  elif name == "adamw":
    inner = optax.adamw(
      schedule,
      b1=opt_config.beta1,
      b2=opt_config.get("beta2", 0.999),
      weight_decay=opt_config.get("weight_decay", 0.0),
    )
  else:
    raise ValueError(f"config.optimizer.name={name!r} is not one of {', '.join(OPTIMIZERS)}")
  chain = [optax.clip_by_global_norm(opt_config.clip_norm)] if opt_config.clip_norm else []
  chain.append(inner)
  tx = optax.chain(*chain)
  mask = trainable_mask(params, freeze_regex)
  labels = jax.tree.map(lambda m: "train" if m else "freeze", mask)
  return optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()}, labels), schedule
