"""Training presets: the released recipes and small ones for the embedded defaults.

``dta train --preset NAME`` starts from a preset; every field can be
overridden on the command line. Without ``--preset`` the dataset's default
preset is used (:data:`DATASET_PRESETS`).

Released recipes (https://github.com/MnJnKIM/DTA-SNN, README and main.py):

* ``cifar``: SGD lr 0.1, momentum 0.9, weight decay 5e-5, cosine, 250 epochs,
  batch 64, T=6, CutMix (alpha 1, probability 0.5).
* ``cifar10-dvs``: lr 0.05, weight decay 0, T=10, 1000 epochs, batch 64;
  timm-style Mixup/CutMix as released (``mixup=0.5``, probability 0.5,
  CutMix off because its alpha stays at timm's default 0, label smoothing
  0.1) with the released flip + TrivialAugment-style event augmentation;
  the soft labels reach the loss (released: thrown away by ``argmax``).
* ``imagenet``: lr 0.1, weight decay 1e-5, 200 epochs, batch 128, T=6, ms_resnet34.

Small presets train an ms_resnet18 at T=4 with batch 64 on a 2-core CPU:
``digits`` width 16 for 4 epochs (11-12 s of training per SNN run, 97-99 % test
accuracy, in the records of ``dta bench``, which runs two runs at once; ``dta train
--attention dta`` alone: 12 s, process start included), ``dvs-digits`` width 8 for 5
epochs (14 s, 95 % for ``dta``, seed 0). Measured on the 2-core reference machine.
"""

from __future__ import annotations

from .registry import Registry

_PRESETS: Registry[dict] = Registry("preset")

_PRESETS.register("cifar", dict(
    model="ms_resnet18", width=64, T=6, epochs=250, batch_size=64, lr=0.1, momentum=0.9,
    weight_decay=5e-5, cutmix_alpha=1.0, cutmix_prob=0.5, mixup_alpha=0.0, augment=True,
))
_PRESETS.register("cifar10-dvs", dict(
    model="ms_resnet18", width=64, T=10, epochs=1000, batch_size=64, lr=0.05, momentum=0.9,
    weight_decay=0.0, cutmix_alpha=0.0, cutmix_prob=0.0, mixup_alpha=0.5, mixup_prob=0.5,
    label_smoothing=0.1, augment=True,
))
_PRESETS.register("nmnist", dict(
    model="ms_resnet18", width=32, T=10, epochs=100, batch_size=64, lr=0.05, momentum=0.9,
    weight_decay=0.0, cutmix_alpha=0.0, cutmix_prob=0.0, mixup_alpha=0.0, augment=True,
))
_PRESETS.register("imagenet", dict(
    model="ms_resnet34", width=64, T=6, epochs=200, batch_size=128, lr=0.1, momentum=0.9,
    weight_decay=1e-5, cutmix_alpha=0.0, cutmix_prob=0.0, mixup_alpha=0.0, augment=True,
))
_PRESETS.register("digits", dict(
    model="ms_resnet18", width=16, T=4, epochs=4, batch_size=64, lr=0.1, momentum=0.9,
    weight_decay=5e-5, cutmix_alpha=0.0, cutmix_prob=0.0, mixup_alpha=0.0, augment=False,
))
_PRESETS.register("dvs-digits", dict(
    model="ms_resnet18", width=8, T=4, epochs=5, batch_size=64, lr=0.1, momentum=0.9,
    weight_decay=5e-5, cutmix_alpha=0.0, cutmix_prob=0.0, mixup_alpha=0.0, augment=False,
))

#: The preset a dataset trains with when ``--preset`` is not given.
DATASET_PRESETS = {
    "digits": "digits", "dvs-digits": "dvs-digits", "cifar10": "cifar", "cifar100": "cifar",
    "cifar10-dvs": "cifar10-dvs", "nmnist": "nmnist", "imagenet": "imagenet",
}


def get_preset(name: str) -> dict:
    return dict(_PRESETS.get(name))


def list_presets() -> list[str]:
    return _PRESETS.names()


def default_preset(dataset: str) -> str:
    return DATASET_PRESETS.get(dataset, "digits")
