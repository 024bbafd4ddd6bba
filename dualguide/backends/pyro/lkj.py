"""Pyro's LKJCholesky with an out-of-place, detached ``sample`` (issue 12).

torch's ``LKJCholesky.sample`` writes into its draw in place (``fill_`` and ``w += ...``)
and relies on the ``no_grad`` inside ``Beta.sample`` to keep the draw out of autograd.
``torch.jit.trace`` (Pyro's ``JitTrace_ELBO``, which dualguide's Pyro fit uses) does not
record ``no_grad``, so in the compiled step the draw depends on the concentration through
ops that were then modified in place, and the backward pass fails ("one of the variables
needed for gradient computation has been modified by an inplace operation").  This class
draws the same numbers from the same generator state (the same onion method, the same
calls to the generator in the same order) without in-place writes, and detaches the draw
(LKJCholesky has no reparameterized sample), which the trace does record.
"""

from __future__ import annotations

import pyro.distributions as pd
import torch

from . import _SupportMasked


class LKJCholesky(_SupportMasked, pd.LKJCholesky):
    """``pyro.distributions.LKJCholesky`` whose ``sample`` traces under ``torch.jit``."""

    def sample(self, sample_shape=torch.Size()):
        y = self._beta.sample(sample_shape).unsqueeze(-1).detach()
        u_normal = torch.randn(
            self._extended_shape(sample_shape), dtype=y.dtype, device=y.device
        ).tril(-1)
        u_hypersphere = u_normal / u_normal.norm(dim=-1, keepdim=True)
        # the first row is 0/0: zeros, as torch's fill_(0.0)
        first = torch.arange(u_hypersphere.shape[-2], device=y.device) == 0
        u_hypersphere = torch.where(first[:, None], torch.zeros_like(u_hypersphere), u_hypersphere)
        w = torch.sqrt(y) * u_hypersphere
        eps = torch.finfo(w.dtype).tiny
        diag_elems = torch.clamp(1 - torch.sum(w**2, dim=-1), min=eps).sqrt()
        return (w + torch.diag_embed(diag_elems)).detach()
