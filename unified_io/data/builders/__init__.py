"""TFDS builders for the paper's datasets that TFDS lacks (`uio_*`). Importing this package
registers all of them with TFDS (`python -m unified_io.data.prepare` and the task modules
import it), so `tfds.builder("uio_vqa_v2")` finds them.
"""

from unified_io.data.builders import snli_ve_imsitu  # noqa: F401
from unified_io.data.builders import vcr_visualcomet  # noqa: F401
from unified_io.data.builders import visual_genome  # noqa: F401
from unified_io.data.builders import vizwiz  # noqa: F401
from unified_io.data.builders import vqa  # noqa: F401
from unified_io.data.builders import coco_annotations  # noqa: F401
from unified_io.data.builders import open_images_v6  # noqa: F401
from unified_io.data.builders import web_image_text  # noqa: F401
from unified_io.data.builders import imagenet21k  # noqa: F401
from unified_io.data.builders import surface_normals  # noqa: F401
from unified_io.data.builders import flickr30k  # noqa: F401
