"""The WGAN-GP critic of GAN unlearning and its losses (seed paper 000, Section 2.3).

The paper does not give the critic's architecture. We use a small MLP on the
sorted posterior vector (length = number of classes): ``Linear(C, w) ->
LeakyReLU(0.2) -> Linear(w, w) -> LeakyReLU(0.2) -> Linear(w, 1)``, ``w = 64``
by default. It has no batch normalisation: the gradient penalty is taken per
example, which batch statistics would break (Gulrajani et al. 2017 recommend
no batch norm, or layer norm, in a WGAN-GP critic).

Everything here works on *sorted* posteriors (descending), so the critic sees
how confident the model is, not which class it picked (the paper's Section 2.4).
"""

from __future__ import annotations

import torch
from torch import nn


def sorted_posteriors(logits: torch.Tensor) -> torch.Tensor:
    """Softmax posteriors sorted in descending order along the class axis (differentiable)."""
    return torch.sort(torch.softmax(logits, dim=1), dim=1, descending=True).values


class Critic(nn.Module):
    """A small MLP scoring a sorted posterior vector; higher means "looks like a non-member"."""

    def __init__(self, num_classes: int, width: int = 64) -> None:
        super().__init__()
        if num_classes < 2 or width < 1:
            raise ValueError(
                f"critic needs num_classes >= 2 and width >= 1, got {num_classes}, {width}"
            )
        self.net = nn.Sequential(
            nn.Linear(num_classes, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, 1),
        )

    def forward(self, sorted_probs: torch.Tensor) -> torch.Tensor:
        return self.net(sorted_probs).squeeze(1)


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    eps: torch.Tensor,
) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] on x̂ = ε·real + (1 − ε)·fake, ``eps`` of shape (n, 1)."""
    mixed = (eps * real + (1.0 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.norm(2, dim=1) - 1.0) ** 2).mean()


def critic_loss(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    eps: torch.Tensor,
    gp_weight: float,
) -> torch.Tensor:
    """The paper's Eq. 5: −E[D(S(P1))] + E[D(S(P2))] + λ·GP (real = S(P1), fake = S(P2))."""
    wasserstein = critic(real).mean() - critic(fake).mean()
    return -wasserstein + gp_weight * gradient_penalty(critic, real, fake, eps)


@torch.no_grad()
def distance_estimate(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float:
    """The critic's Wasserstein estimate E[D(S(P1))] − E[D(S(P2))] over whole sets.

    With the gradient penalty the critic is (softly) 1-Lipschitz in the L2 norm
    of the sorted posterior vector, so the estimate is a lower bound on the
    Wasserstein-1 distance between the two sets of sorted posteriors, in
    probability units: at most √2, and about the mean top-1 confidence gap when
    the sets differ mainly in how confident the model is.
    """
    was_training = critic.training
    critic.eval()
    value = float(critic(real).mean() - critic(fake).mean())
    critic.train(was_training)
    return value
