"""Prediction stage: the attention decoder (the CTC head is a plain ``nn.Linear`` in ``Model``).

Class indices follow the Attn label converter: 0 is [GO], 1 is [s] (end of sequence),
characters start at 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "AttentionCell", "GO_INDEX", "EOS_INDEX"]

GO_INDEX = 0
EOS_INDEX = 1


class AttentionCell(nn.Module):
    """One decoding step of the Bahdanau-style attention LSTM.

    e = score(tanh(i2h(H) + h2h(h_prev))) over the T encoder steps, alpha = softmax over T,
    context = sum_t alpha_t * H_t, and (h, c) = rnn([context, one_hot(previous char)], (h, c)).
    """

    def __init__(self, input_size: int, hidden_size: int, num_embeddings: int) -> None:
        super().__init__()
        self.i2h = nn.Linear(input_size, hidden_size, bias=False)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)
        self.rnn = nn.LSTMCell(input_size + num_embeddings, hidden_size)

    def attend(
        self,
        prev_hidden: tuple[torch.Tensor, torch.Tensor],
        batch_H: torch.Tensor,
        batch_H_proj: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(context [B, input_size], alpha [B, T, 1]) for the previous hidden state."""
        if batch_H_proj is None:
            batch_H_proj = self.i2h(batch_H)  # [B, T, hidden]
        prev_hidden_proj = self.h2h(prev_hidden[0]).unsqueeze(1)  # [B, 1, hidden]
        energy = self.score(torch.tanh(batch_H_proj + prev_hidden_proj))  # [B, T, 1]
        # in float32 (or wider) even under mixed precision: a half-precision softmax over the
        # encoder steps loses the small weights that sharpen as training goes on
        alpha = F.softmax(energy, dim=1, dtype=torch.promote_types(energy.dtype, torch.float32))
        alpha = alpha.to(batch_H.dtype)
        context = torch.bmm(alpha.permute(0, 2, 1), batch_H).squeeze(1)  # [B, input_size]
        return context, alpha

    def forward(
        self,
        prev_hidden: tuple[torch.Tensor, torch.Tensor],
        batch_H: torch.Tensor,
        char_onehots: torch.Tensor,
        batch_H_proj: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Run one step. Returns ((h, c), alpha) with alpha of shape [B, T, 1].

        ``batch_H_proj`` is ``i2h(batch_H)``; pass it when calling the cell repeatedly over
        the same encoder output, since it does not depend on the step.
        """
        context, alpha = self.attend(prev_hidden, batch_H, batch_H_proj)
        rnn_input = torch.cat([context, char_onehots], 1)
        return self.rnn(rnn_input, prev_hidden), alpha

    def step_from_indices(
        self,
        prev_hidden: tuple[torch.Tensor, torch.Tensor],
        batch_H: torch.Tensor,
        batch_H_proj: torch.Tensor,
        chars: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The step of :meth:`forward` for characters given as indices: the one-hot part of
        the LSTM input only selects a column of ``weight_ih``, so the column is gathered instead
        of multiplying a [B, num_class] one-hot matrix (with a Korean alphabet of 2,446 classes
        that product is most of a decoding step's work). Same weights, same result up to float
        rounding; returns (h, c)."""
        context, _ = self.attend(prev_hidden, batch_H, batch_H_proj)
        h_prev, c_prev = prev_hidden
        input_size = context.size(1)
        weight_ih = self.rnn.weight_ih
        gates = F.linear(context, weight_ih[:, :input_size], self.rnn.bias_ih)
        gates = gates + torch.index_select(weight_ih[:, input_size:], 1, chars).t().to(gates.dtype)
        gates = gates + F.linear(h_prev, self.rnn.weight_hh, self.rnn.bias_hh)
        in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, 1)  # nn.LSTMCell's order
        c = torch.sigmoid(forget_gate) * c_prev + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
        h = torch.sigmoid(out_gate) * torch.tanh(c)
        return h, c


class Attention(nn.Module):
    """Attention decoder: encoder features [B, T, input_size] -> logits [B, L + 1, num_class].

    L is ``batch_max_length``; the extra step is for [s]. Decoding starts from a zero state.
    Training (``is_train=True``) feeds ``text[:, i]`` at step i (teacher forcing; ``text``
    must hold at least L + 1 columns, starting with [GO]). Inference ignores ``text``: it
    feeds [GO] first and then the argmax of the previous step.

    At inference, decoding stops once every sequence in the batch has emitted [s] (unless
    ``stop_at_eos=False``). The steps it did not run are filled, per sequence, with a copy of
    the logits of the step where that sequence first emitted [s], so their argmax is [s] and
    a caller that cuts at the first [s] sees exactly what a full-length run gives. (A full
    run keeps decoding after [s]; those steps are never read by DTRB's test or demo code.)
    """

    def __init__(self, input_size: int, hidden_size: int, num_class: int) -> None:
        super().__init__()
        self.attention_cell = AttentionCell(input_size, hidden_size, num_class)
        self.hidden_size = hidden_size
        self.num_classes = num_class
        self.generator = nn.Linear(hidden_size, num_class)

    def _char_to_onehot(self, chars: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.one_hot(chars.long(), num_classes=self.num_classes).to(dtype)

    def _zero_state(self, batch_H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size = batch_H.size(0)
        return (
            batch_H.new_zeros(batch_size, self.hidden_size),
            batch_H.new_zeros(batch_size, self.hidden_size),
        )

    def forward(
        self,
        batch_H: torch.Tensor,
        text: torch.Tensor | None,
        is_train: bool = True,
        batch_max_length: int = 25,
        stop_at_eos: bool = True,
    ) -> torch.Tensor:
        num_steps = batch_max_length + 1  # + 1 for [s]
        batch_H_proj = self.attention_cell.i2h(batch_H)  # the same for every step
        if is_train:
            return self._decode_teacher_forced(batch_H, batch_H_proj, text, num_steps)
        return self._decode_greedy(batch_H, batch_H_proj, num_steps, stop_at_eos)

    def _decode_teacher_forced(
        self,
        batch_H: torch.Tensor,
        batch_H_proj: torch.Tensor,
        text: torch.Tensor | None,
        num_steps: int,
    ) -> torch.Tensor:
        if text is None or text.dim() != 2 or text.size(1) < num_steps:
            got = None if text is None else list(text.shape)
            raise ValueError(
                f"Attention training needs text of shape [batch, >= {num_steps}] "
                f"(batch_max_length + 1 columns starting with [GO]); got {got}"
            )
        hidden = self._zero_state(batch_H)
        hiddens = []
        for step in range(num_steps):
            onehots = self._char_to_onehot(text[:, step], batch_H.dtype)
            hidden, _ = self.attention_cell(hidden, batch_H, onehots, batch_H_proj)
            hiddens.append(hidden[0])
        return self.generator(torch.stack(hiddens, dim=1))  # [B, num_steps, num_class]

    def _decode_greedy(
        self,
        batch_H: torch.Tensor,
        batch_H_proj: torch.Tensor,
        num_steps: int,
        stop_at_eos: bool,
    ) -> torch.Tensor:
        batch_size = batch_H.size(0)
        hidden = self._zero_state(batch_H)
        targets = torch.full((batch_size,), GO_INDEX, dtype=torch.long, device=batch_H.device)
        step_logits: list[torch.Tensor] = []
        eos_logits: torch.Tensor | None = None  # per sequence, the logits of its first [s]
        finished = torch.zeros(batch_size, dtype=torch.bool, device=batch_H.device)
        for _ in range(num_steps):
            hidden = self.attention_cell.step_from_indices(hidden, batch_H, batch_H_proj, targets)
            logits = self.generator(hidden[0])  # [B, num_class]
            step_logits.append(logits)
            _, targets = logits.max(1)
            if not stop_at_eos:
                continue
            newly_finished = (targets == EOS_INDEX) & ~finished
            if eos_logits is None:
                eos_logits = torch.zeros_like(logits)
            eos_logits = torch.where(newly_finished.unsqueeze(1), logits, eos_logits)
            finished = finished | newly_finished
            # One host sync per step; it saves up to batch_max_length cell steps.
            if bool(finished.all()):
                break
        probs = torch.stack(step_logits, dim=1)  # [B, steps run, num_class]
        missing = num_steps - probs.size(1)
        if missing:
            filler = eos_logits.unsqueeze(1).expand(-1, missing, -1)
            probs = torch.cat([probs, filler], dim=1)
        return probs
