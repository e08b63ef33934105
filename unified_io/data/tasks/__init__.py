"""Every registered task. Importing this package registers the tasks of its task modules.

`registry` holds the Task type and the lookup functions; the other modules only declare
tasks. Code that looks tasks up by name imports the package (or any of its modules, which
imports the package first), so a lookup always sees every task.
"""

from unified_io.data.tasks import registry

# Imported for their registrations, after the registry they register into.
from unified_io.data.tasks import builtin_vision  # noqa: F401
from unified_io.data.tasks import text  # noqa: F401
from unified_io.data.tasks import vision  # noqa: F401
from unified_io.data.tasks import nlp  # noqa: F401
from unified_io.data.tasks import nlp_qa  # noqa: F401
from unified_io.data.tasks import classification  # noqa: F401
from unified_io.data.tasks import detection  # noqa: F401
from unified_io.data.tasks import pretraining  # noqa: F401
from unified_io.data.tasks import vl_visual_genome  # noqa: F401
from unified_io.data.tasks import vl_vqa  # noqa: F401
from unified_io.data.tasks import vl_vizwiz  # noqa: F401
from unified_io.data.tasks import vl_snli_ve_imsitu  # noqa: F401
from unified_io.data.tasks import vl_vcr_visualcomet  # noqa: F401
from unified_io.data.tasks import ext_coco_annotations  # noqa: F401
from unified_io.data.tasks import ext_open_images_v6  # noqa: F401
from unified_io.data.tasks import ext_web_image_text  # noqa: F401
from unified_io.data.tasks import ext_imagenet21k  # noqa: F401
from unified_io.data.tasks import ext_surface_normals  # noqa: F401
from unified_io.data.tasks import ext_flickr30k  # noqa: F401

# Last: it registers variants of the tasks above (unified_io/data/labels/*_sce.json).
from unified_io.data import concept_split  # noqa: E402, F401
