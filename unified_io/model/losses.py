"""Token-level cross-entropy for text and image targets.

The released model is trained with a per-token loss: every non-padding target token (text
or image) of the batch counts once, and the batch loss is their mean (NORMALIZATIONS
"tokens"). With "examples" (t5x's AVERAGE_PER_SEQUENCE) every example counts once instead:
the batch loss is the mean over examples of each one's per-token mean, so a task's share of
the gradient is its sampling rate, whatever the length of its targets, but within a task
a short target's tokens then weigh more than a long one's. "tasks" keeps the per-token
mean and weights each task's tokens by 1 / its mean target length (set by the input
pipeline), so a task's share is its rate and one task's tokens weigh alike. `example_losses`
gives the per-example sums that answer-option scoring ranks by.
"""

import jax
import jax.numpy as jnp


def token_cross_entropy(logits, targets, z_loss=0.0):
  """-log p(target) per position (float32), plus z_loss * logsumexp^2 when z_loss > 0."""
  logits = logits.astype(jnp.float32)
  log_z = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  loss = log_z - target_logit
  if z_loss:
    loss = loss + z_loss * jnp.square(log_z)
  return loss


def _parts(text_logits, image_logits, batch):
  parts = [(text_logits, batch["text_targets"], batch["text_targets"] > 0)]
  if batch.get("image_targets") is not None:
    mask = batch.get("image_target_mask")
    mask = jnp.ones(batch["image_targets"].shape, bool) if mask is None else mask.astype(bool)
    parts.append((image_logits, batch["image_targets"], mask))
  return parts


def example_losses(text_logits, image_logits, batch, z_loss=0.0):
  """(summed loss [B], number of target tokens [B]) over text and image targets."""
  total, count = 0.0, 0
  for logits, targets, mask in _parts(text_logits, image_logits, batch):
    total = total + jnp.sum(token_cross_entropy(logits, targets, z_loss) * mask, axis=-1)
    count = count + jnp.sum(mask, axis=-1)
  return total, count


# "tasks" is "tokens" here: its per-task weights reach the loss as Task.loss_weight factors
# set by the input pipeline (data/from_config.set_length_weights).
NORMALIZATIONS = ("tokens", "examples", "tasks")


def check_normalization(normalization: str) -> str:
  if normalization not in NORMALIZATIONS:
    raise ValueError(
      f"config.loss.normalization={normalization!r} is not one of: {', '.join(NORMALIZATIONS)}"
    )
  return normalization


def batch_loss(example_loss, example_count, example_weights=None, normalization="tokens"):
  """The batch loss from per-example sums under `normalization` (NORMALIZATIONS).

  "tokens": `weighted_token_mean`. "examples": sum_b w_b * loss_b / count_b over the
  examples with target tokens, divided by their number (0 for a batch without any).
  """
  if check_normalization(normalization) != "examples":
    return weighted_token_mean(example_loss, example_count, example_weights)
  count = example_count.astype(jnp.float32)
  per_token = jnp.where(count > 0, example_loss / jnp.maximum(count, 1.0), 0.0)
  if example_weights is not None:
    per_token = per_token * example_weights
  return jnp.sum(per_token) / jnp.maximum(jnp.sum(count > 0), 1)


def weighted_token_mean(example_loss, example_count, example_weights=None):
  """The batch loss from per-example sums: sum_b w_b * loss_b / sum_b count_b.

  Every target token counts once, so a long answer weighs more than a short one (the
  released model's per-token loss). A task's `loss_weight` (`example_weights` [B]) scales
  its examples' share of the numerator only: the denominator stays the token count, so a
  weight of 2 doubles those tokens' gradient instead of being renormalised away. A batch
  with no target tokens gives 0, not NaN.
  """
  if example_weights is not None:
    example_loss = example_loss * example_weights
  return jnp.sum(example_loss) / jnp.maximum(jnp.sum(example_count), 1)


def mean_token_loss(text_logits, image_logits, batch, z_loss=0.0, example_weights=None):
  """Mean over all target tokens of the batch; `example_weights` [B] scales each example."""
  total, count = example_losses(text_logits, image_logits, batch, z_loss)
  return weighted_token_mean(total, count, example_weights)
