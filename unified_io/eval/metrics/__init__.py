"""Evaluation metrics for the Unified-IO tasks, as plain functions over numpy / Python data.

One home per metric primitive, grouped by concern: text.py (accuracy, F1, VQA, captioning),
boxes.py (box IoU, refexp accuracy, COCO detection AP), keypoints.py (OKS, COCO keypoint
AP), dense.py (depth, normals, mask and segmentation IoU) and base.py (checks and the
matched-instance score). GRIT's scorer (unified_io/eval/grit/scoring.py) calls these same
functions, its documented deviations from the usual conventions passed as keyword-only
parameters whose defaults give the built-in evaluation's behaviour.

Inputs are validated up front and errors are ValueErrors that name the argument. Callers
use `from unified_io.eval import metrics; metrics.<name>`: this façade is the one place the
public names are listed again.
"""

from unified_io.eval.metrics.base import matched_score
from unified_io.eval.metrics.boxes import box_iou
from unified_io.eval.metrics.boxes import detection_map
from unified_io.eval.metrics.boxes import refexp_accuracy
from unified_io.eval.metrics.dense import depth_rmse
from unified_io.eval.metrics.dense import mask_iou
from unified_io.eval.metrics.dense import normal_angle_error
from unified_io.eval.metrics.dense import resize_mask_bilinear
from unified_io.eval.metrics.dense import segmentation_iou
from unified_io.eval.metrics.keypoints import keypoint_ap
from unified_io.eval.metrics.keypoints import keypoint_oks
from unified_io.eval.metrics.text import accuracy
from unified_io.eval.metrics.text import bleu
from unified_io.eval.metrics.text import caption_metrics
from unified_io.eval.metrics.text import cider
from unified_io.eval.metrics.text import f1
from unified_io.eval.metrics.text import java_available
from unified_io.eval.metrics.text import meteor
from unified_io.eval.metrics.text import normalize_vqa_answer
from unified_io.eval.metrics.text import rouge_l
from unified_io.eval.metrics.text import spice
from unified_io.eval.metrics.text import spice_available
from unified_io.eval.metrics.text import tokenize_caption
from unified_io.eval.metrics.text import vqa_accuracy
from unified_io.eval.metrics.text import vqa_scores
