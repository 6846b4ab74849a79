"""`pointillist clusterer train ...`: train the clusterer's learned methods."""

from __future__ import annotations

import click

from pointillist.clusterer.caml.train_cli import caml
from pointillist.clusterer.miro.train_cli import train_miro_command


@click.group()
def clusterer() -> None:
    """Cluster localizations; train MIRO and CAML models."""


@clusterer.group("train")
def train() -> None:
    """Train a learned clustering method."""


train.add_command(train_miro_command)
train.add_command(caml)
