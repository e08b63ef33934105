"""Salts of the NumPy random streams of the input pipeline and evaluation.

Every host-side random choice is drawn from `np.random.default_rng([seed, SALT, ...])`, so
a run is a pure function of config.seed and the position in the stream (exact resume, and
the same examples whichever host draws them). A distinct salt per stream keeps two streams
that happen to share their other keys (block 3 vs example 3) independent. Changing a value
changes which examples every past run saw: they are fixed.
"""

# Order of task slots within a mixture block (data.schedule.Schedule; also the first phase
# of a data.schedule.Curriculum, a Schedule of its own).
BLOCK_ORDER = 7
# Order of a task's records within one epoch (data.schedule.EpochPermutation).
EPOCH_ORDER = 11
# A training example's preprocessing choices (crops, prompts, masks), per draw attempt.
TRAIN_EXAMPLE = 13
# An evaluation example's preprocessing choices (eval.task_eval.collect).
EVAL_EXAMPLE = 17
# Which go task gets each slot that a stopped task frees (data.stop_and_go.GatedSchedule).
STOP_AND_GO = 19
# Order of the cached batches in each epoch of frozen-encoder training (train.encoder_cache).
ENCODER_CACHE_ORDER = 23
# Records a task's mean target length is measured on (config.loss.normalization="tasks":
# pipeline.MixtureStream.mean_target_tokens).
LENGTH_PROBE = 29
