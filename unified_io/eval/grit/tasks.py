"""GRIT (General Robust Image Task benchmark, Gupta et al. 2022): samples, prompts,
submission files and the official scoring.

Data layout, as allenai/grit_official's download scripts leave it:

    GRIT/
      images/                      image_id paths are relative to this folder
      output_options/{name}.json   label sets for categorization (e.g. coco_categories)
      samples/{ablation,test}/{task}.json

A sample file is a JSON list with one dict per sample: example_id, image_id, task_name,
task_query (category, question, expression or null), task_bbox ([x1, y1, x2, y2] for
categorization, else null) and output_options (label-set name or null). GRIT publishes no
ground truth for ablation or test: the leaderboard scores submissions. `evaluate` therefore
needs sample files that also carry it, in the layout the official evaluate.py reads:

    {"input": {"example_id", "image_id", "task_query", ...},
     "output": {"words", "bboxes", "masks", "points", "out_image_name"},
     "meta": {"is_new_source", "has_new_concept", "is_distorted", "data_source",
              "concepts": [{"lemma": ...}, ...]}}

`load_samples` reads either layout (and "gt" for "output", as in the repo's example file)
into one flat dict per sample.

A submission is a folder named after the split holding params.json ({"params_in_millions":
int}), one {task}.json per task (a list of {"example_id", "confidence" in [0, 1], and the
task's field: "words" (categorization, vqa), "bboxes" (localization, refexp), "masks" as
COCO RLE (segmentation), "points" with 17 x, y, v triples per person (keypoint), "normal", a
file name under normals/ (normal)}) and normals/ with RGB PNGs. It is uploaded as
{split}.zip holding the {split}/ folder.

Scores follow evaluate.py: each sample gets a score in [0, 1] (scoring.py), and means
(in percent) are reported as "{measure}.{concept_group}.{partition}.{task_abbrev}.mean"
with ".cnt" for the sample count, where the partitions are sameSrc / newSrc (undistorted
samples from the task's primary training sources or not), agg (the mean of those two,
equal weight each: the per-task number the leaderboard's "overall" averages), sameCpt /
newCpt (undistorted samples whose concepts are all / not all in the primary training
data: the paper's "same" / "new"), dist (distorted copies), undist (the undistorted
originals of those) and deldist (undist minus dist, per pair).

This module is the GRIT entry point other code imports (`from unified_io.eval.grit import
tasks as grit`); the parts live in definitions.py (tasks, fields, prompts), samples.py
(reading sample files), submission.py (writing and reading submissions), evaluation.py
(scoring them) and scoring.py (the per-sample metrics), and are re-exported here.
"""

# Re-exports: these names are imported from here.
# ruff: noqa: F401
from unified_io.eval.grit.definitions import GRIT_PROMPTS
from unified_io.eval.grit.definitions import GRIT_TASKS
from unified_io.eval.grit.definitions import GT_FIELDS
from unified_io.eval.grit.definitions import KEYPOINT_REGION_PROMPT
from unified_io.eval.grit.definitions import MEASURES
from unified_io.eval.grit.definitions import PARTITIONS
from unified_io.eval.grit.definitions import PREDICTION_FIELD
from unified_io.eval.grit.definitions import SPLITS
from unified_io.eval.grit.definitions import STUFF_MARKER
from unified_io.eval.grit.definitions import TASK_ABBREVIATIONS
from unified_io.eval.grit.definitions import keypoint_region_prompt
from unified_io.eval.grit.definitions import prompt_for
from unified_io.eval.grit.evaluation import evaluate
from unified_io.eval.grit.evaluation import evaluate_submission
from unified_io.eval.grit.evaluation import sample_score
from unified_io.eval.grit.samples import image_path
from unified_io.eval.grit.samples import load_output_options
from unified_io.eval.grit.samples import load_samples
from unified_io.eval.grit.samples import samples_path
from unified_io.eval.grit.submission import load_predictions
from unified_io.eval.grit.submission import write_params
from unified_io.eval.grit.submission import write_predictions
from unified_io.eval.grit.submission import zip_submission
