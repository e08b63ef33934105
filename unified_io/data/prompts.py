"""Prompt templates of every Unified-IO task, the one place they are written down.

`PROMPTS[key]` is a tuple of `str.format` templates. The first is the official one:
character for character what the released Unified-IO model was trained with (spaces around
quotes and before "?" included), so a checkpoint sees the text it knows. Where the released
code does not name a prompt, the first template is the paper's appendix A.1 wording written
in the same spacing style. The rest are paraphrases, used only with
`TaskContext.paraphrase`; every template of a key takes the same arguments, in the same order
(a paraphrase may reorder them with explicit indices, "{1} ... {0}").

Arguments are plain text: location tokens arrive already written as "<extra_id_N>" text
(`unified_io.common.locations.box_to_text`).
"""

from __future__ import annotations

import string
from typing import Dict, Tuple

PROMPTS: Dict[str, Tuple[str, ...]] = {
  # --- Image synthesis (appendix A.1.1).
  "image_generation": (  # (caption)
    'What is the complete image? Text: " {} " .',
    'Generate an image that matches the text " {} " .',
    'What does the image of " {} " look like ?',
  ),
  "image_inpainting": (  # (location tokens of the blank box, then the class)
    'Filling the blank region " {} " ?',
    'Fill in the blank region " {} " .',
    'Complete the image by filling in the region " {} " .',
  ),
  "segmentation_based_generation": (  # ("colour : class , colour : class ...")
    'What is the complete image? Segmentation color: " {} "',
    'Generate an image matching the segmentation with colors " {} " .',
    'What image has the segmentation " {} " ?',
  ),
  # --- Sparse labelling (A.1.2).
  "detection": (  # no argument; paper: "What objects are in the image ?"
    "What objects are in the image ?",
    "List the objects in the image and their regions .",
    "Where are the objects in the image ?",
  ),
  "localization": (  # (class name); paper: 'Which regions does the text "giraffe" describe ?'
    'Which regions does the text " {} " describe ?',
    'Which region does the text " {} " describe ?',
    'Find all the regions of " {} " in the image .',
  ),
  "keypoint": (  # (location tokens of the person box)
    'Find the human joints in the region " {} " .',
    'Where are the human joints of the person in the region " {} " ?',
    'Locate the body keypoints in the region " {} " .',
  ),
  "refexp": (  # (referring expression)
    'Which region does the text " {} " describe ?',
    'Where is " {} " in the image ?',
    'Find the region described by the text " {} " .',
  ),
  # --- Dense labelling (A.1.3).
  "depth": (
    "What is the depth map of the image ?",
    "What is the depth of the image ?",
    "Estimate the depth map of the image .",
  ),
  "surface_normal": (
    "What is the surface normal of the image ?",
    "What are the surface normals of the image ?",
    "Estimate the surface normal map of the image .",
  ),
  "segmentation": (  # (class name)
    'What is the segmentation of " {} " ?',
    'Segment every " {} " in the image .',
    'Which pixels belong to " {} " ?',
  ),
  # --- Image classification (A.1.4).
  "image_classification": (
    "What is this in the image ?",
    "What is in this image ?",
    "What category does the image belong to ?",
  ),
  "object_categorization": (  # (location tokens of the region)
    'What is the category of region " {} " ?',
    'What is the category of the object in the region " {} " ?',
    'What kind of object is in the region " {} " ?',
  ),
  # --- Image captioning (A.1.5).
  "image_captioning": (
    "What does the image describe ?",
    "What is happening in the image ?",
    "Describe the image .",
  ),
  "region_captioning": (  # (location tokens of the region)
    'What does the region " {} " describe ?',
    'Describe the region " {} " .',
    'What is in the region " {} " ?',
  ),
  # --- Vision & language (A.1.6). VQA's prompt is the lower-cased question itself.
  "vqa": ("{}",),
  "grounded_vqa": ("{}",),
  "relationship": (  # (subject "box tokens class", object "box tokens class")
    'What is the relationship between " {} " and " {} " ?',
    'How is " {0} " related to " {1} " ?',
    'What relationship does " {0} " have with " {1} " ?',
  ),
  # SNLI-VE, imSitu/SWiG (data/tasks/vl_snli_ve_imsitu.py). The paper (A.1.6) says only that
  # SNLI-VE's hypothesis goes into a question and that imSitu's verb and slots are separate
  # VQA questions; the first templates are Unified-IO's released prompt list
  # (Prompt_Visual_Entailment, Prompt_Ground_Situation_Recognition_Verb / _Frame, kept as the
  # "original" prompts of allenai/unified-io-2's data/prompt_dict.py), in this file's spacing.
  "visual_entailment": (  # (premise caption, hypothesis)
    'Can image and text " {} " imply text " {} " ?',
    'Do the image and the text " {} " entail the text " {} " ?',
    'Given the image and " {} " , is " {} " entailment, neutral or contradiction ?',
  ),
  "situation_verb": (  # no argument
    "What is the salient activity of the image ?",
    "What action does the image show ?",
    "What are they doing in the image ?",
  ),
  "situation_role": (  # (verb, role)
    'Given the image and salient activity is " {} ", what is the situation in terms of " {} " ?',
    'The activity is " {} " . What is its " {} " in the image ?',
    'Who or what is the " {1} " of " {0} " in the image ?',
  ),
  # A-OKVQA multiple choice (data/tasks/vl_vqa.py): neither the paper nor the released code
  # gives a prompt; the VQA prompt (the lower-cased question) followed by the options.
  "vqa_multiple_choice": (  # (lower-cased question, the example's options joined by " , ")
    "{} Choose from: {}",
    "{} Options: {}",
    'Which of {1} answers " {0} " ?',
  ),
  # VCR, VisualCOMET (data/tasks/vl_vcr_visualcomet.py): the first templates are the released
  # Prompt_VCR_QA, Prompt_VCR_QAR and Prompt_VisComet_* of allenai/unified-io-2's
  # data/prompt_dict.py, character for character (trailing spaces, "will most likely to do").
  # Object references arrive written as tags, with their location tokens at the first mention.
  "vcr_answer": (  # (question)
    'Question: " {} " Answer: ',
    'Answer the question " {} " .',
    'What is the answer to " {} " ?',
  ),
  "vcr_rationale": (  # (question, its right answer)
    'Question: " {} " Answer: " {} " Rationale: ',
    'Why is " {1} " the answer to " {0} " ?',
    'Question: " {} " Answer: " {} " Why ?',
  ),
  "visualcomet_before": (  # (event, place)
    'Event: " {} {} " Before, what the person needed to do ?',
    'Event: " {} {} " What did the person need to do before ?',
    'What had to happen before " {} {} " ?',
  ),
  "visualcomet_intent": (  # (event, place)
    'Event: " {} {} " Because, what the person wanted to do ?',
    'Event: " {} {} " What does the person want to do ?',
    'Why is this happening: " {} {} " ?',
  ),
  "visualcomet_after": (  # (event, place)
    'Event: " {} {} " After, what the person will most likely to do ?',
    'Event: " {} {} " What will the person most likely do next ?',
    'What will happen after " {} {} " ?',
  ),
  # --- NLP (A.1.7), formatted as in T5: inputs and a query in the prompt.
  "text_classification": (  # (context: the input sentence(s), question: the query)
    "context: {} question: {}",
    "question: {1} context: {0}",
    "{0} {1}",
  ),
  "entailment_question": (  # the query of entailment examples (paper A.1.7's card)
    "Does this sentence entail the following sentence?",
    "Does the first sentence entail the second sentence?",
  ),
  "sentiment_question": (  # the query of sentiment examples
    "What is the sentiment of this sentence?",
    "Is this sentence positive or negative?",
  ),
  # Per-dataset queries of the real NLP tasks (data/tasks/nlp.py, nlp_qa.py). Where the
  # paper's A.4 cards (Figure 11) show one, the first template is that card's text as printed,
  # slips included ("sentence paraphrases", "continutation"): they are what the model read.
  "nli_question": (  # 3-way NLI (MNLI, SNLI, CB); A.4 card
    "Is the relation of the sentences entailment, neutral or contradiction?",
    "Do these sentences show entailment, neutral or contradiction?",
  ),
  "acceptability_question": (  # CoLA
    "Is this sentence grammatically acceptable or unacceptable?",
    "Is this sentence acceptable or unacceptable English?",
  ),
  "paraphrase_question": (  # MRPC, PAWS; A.4 card (sic)
    "Are these sentence paraphrases?",
    "Are these sentences paraphrases of each other?",
  ),
  "duplicate_question": (  # QQP
    "Do these questions ask the same thing?",
    "Are these two questions duplicates?",
  ),
  "similarity_question": (  # STS-B
    "How similar are these sentences on a scale from 0 to 5?",
    "What is the similarity of these sentences, from 0 to 5?",
  ),
  "answer_sentence_question": (  # QNLI; A.4 card
    "Does the first sentence contain the answer to the second sentence?",
    "Does the first sentence answer the question in the second sentence?",
  ),
  "word_sense_question": (  # (word) WiC
    'Does the word " {} " have the same meaning in both sentences?',
    'Is the word " {} " used with the same meaning in the two sentences?',
  ),
  "coreference_question": (  # (pronoun, noun phrase) WSC; A.4 card
    'Does the word " {} " refer to {}?',
    'In this text, does " {} " refer to {}?',
  ),
  "continuation_question": (  # HellaSwag; A.4 card (sic)
    "Which option is the most likely continutation of this paragraph?",
    "Which option best continues this paragraph?",
  ),
  "cause_effect_question": (  # ("cause" or "effect") COPA
    "Which option is the more likely {} of this?",
    "Which option is the most plausible {} of this?",
  ),
  "candidate_answer_question": (  # (question, candidate answer) MultiRC
    '{} Is " {} " a correct answer?',
    '{} Is the answer " {} " correct?',
  ),
  "cloze_question": (  # (query with the blank written " _ ") ReCoRD
    'Which entity fills the blank " _ " in: {}',
    'What should replace " _ " in: {}',
  ),
  "question_answering": (  # (context, question)
    "context: {} question: {}",
    "question: {1} context: {0}",
    "{0} Answer this question: {1}",
  ),
  "summarization": (  # (document); paper A.1.7's card
    "context: {} question: What is a short summary of this document?",
    "context: {} question: Summarize this document.",
    "Write a short summary of this document: {}",
  ),
  # --- Language modelling (A.1.8): the corrupted text is the whole prompt.
  "masked_language_modelling": ("{}",),
  "span_denoising": ("{}",),
}


def num_arguments(template: str) -> int:
  """How many arguments `template.format` takes ("{}" fields or distinct "{i}" indices)."""
  fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
  automatic = sum(1 for name in fields if name == "")
  explicit = {int(name) for name in fields if name != ""}
  return automatic + len(explicit)


def official(key: str) -> str:
  return PROMPTS[key][0]


def _check():
  # A paraphrase taking other arguments than the official template would fail (or drop
  # text) only when it happens to be drawn; catch it at import instead.
  for key, templates in PROMPTS.items():
    counts = {num_arguments(t) for t in templates}
    if not templates or len(counts) != 1:
      raise ValueError(f"prompts[{key!r}]: templates take different argument counts {counts}")


_check()
