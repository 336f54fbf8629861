"""Reuse lessons_lib outside Jupyter: profile torchvision models, then train and evaluate a small CNN.

    python examples/profile_and_train.py            # about 30 s on a 2-core CPU
    python examples/profile_and_train.py --quick    # about 10 s
"""
from __future__ import annotations

import argparse

import torch
import torchvision

from lessons_lib import data, devices, machine, models, profile, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    args = ap.parse_args()
    train.seed_everything(0)
    print("machine:", machine.describe("cpu"))

    # 1. profile torchvision models built without weights (nothing is downloaded)
    for name in ("mobilenet_v2", "resnet18"):
        net = getattr(torchvision.models, name)(weights=None).eval()
        rep = profile.profile_model(net, (1, 3, 224, 224))
        lat = profile.measure_latency(net, torch.randn(1, 3, 224, 224), repeats=3 if args.quick else 10)
        print(f"{name}: {rep.total_params:,} params, {rep.total_macs / 1e6:.1f} M MACs, "
              f"{lat.median_ms:.1f} ms here, >= {devices.estimate_ms(rep.total_macs, 'Raspberry Pi 4B'):.0f} ms on a Raspberry Pi 4B")
    print(profile.profile_model(models.StudentCNN(), (1, 3, 32, 32)).table(max_rows=8))

    # 2. train a small student on the procedural shapes set and evaluate it
    splits = data.shapes_splits(n_train=2000 if args.quick else 6000, n_val=500, n_test=1000)
    student = models.StudentCNN()
    hist = train.fit(student, splits.train, val=splits.val, epochs=2 if args.quick else 5, progress_bar=False)
    print("val accuracy per epoch:", [f"{a:.3f}" for a in hist.val_acc])
    print(f"test accuracy: {train.evaluate(student, splits.test)['acc']:.3f}")


if __name__ == "__main__":
    main()
