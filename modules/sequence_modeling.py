"""Sequence-modelling stage: stacked bidirectional LSTMs over the feature columns."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BidirectionalLSTM"]


class BidirectionalLSTM(nn.Module):
    """A bidirectional LSTM followed by a linear projection: [B, T, input_size] -> [B, T, output_size].

    ``rnn`` is ``nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)`` and
    ``linear`` maps its 2 * hidden_size outputs to ``output_size`` (checkpoint names
    ``rnn.*`` and ``linear.*``, as in DTRB).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # Replicas made by DataParallel hold non-contiguous weight copies; cuDNN wants them
        # in one block. A no-op on CPU.
        self.rnn.flatten_parameters()
        recurrent, _ = self.rnn(features)  # [B, T, 2 * hidden_size]
        return self.linear(recurrent)
