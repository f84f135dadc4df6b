"""The CF-k / EU-k reference restated for the cross-checks (not a test module).

shash42/Evaluating-Inexact-Unlearning at e315401: ``getRetrainLayers`` (Conv2d,
BatchNorm2d, Linear in module order), ``resetFinalResnet`` (freeze all, walk
the reversed list, ``_reinit`` and unfreeze until the k-th conv/linear), and
``train_loop`` / ``train`` (SGD over the trainable parameters,
``CosineAnnealingWarmRestarts(T_0=1, T_mult=2, eta_min=minlr)`` stepped per
epoch, ``clip_grad_norm_`` before each step). The reference draws ``_reinit``'s
Kaiming weights from the global generator; here they come from ``gen`` in the
same (output-first) order, the one difference we choose, so the weights can be
compared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def get_retrain_layers(m, ret):
    if isinstance(m, nn.Conv2d | nn.BatchNorm2d | nn.Linear):
        ret.append(m)
    for child in m.children():
        get_retrain_layers(child, ret)
    return ret


def reset_final(model, num_retrain, reinit, gen):
    for param in model.parameters():
        param.requires_grad = False
    done = 0
    ret = get_retrain_layers(model, [])
    ret.reverse()
    for layer in ret:
        if reinit and isinstance(layer, nn.Conv2d | nn.Linear):
            with torch.no_grad():
                nn.init.kaiming_normal_(layer.weight, generator=gen)
                if layer.bias is not None:
                    layer.bias.data.fill_(0)
        if isinstance(layer, nn.Conv2d | nn.Linear):
            done += 1
        for param in layer.parameters():
            param.requires_grad = True
        if done >= num_retrain:
            break
    return model


def train_loop(model, task, epoch_batches, maxlr, minlr, momentum, weight_decay, clip):
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=maxlr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=1, T_mult=2, eta_min=minlr
    )
    for loader in epoch_batches:
        model.train()
        for idx in loader:
            outputs = model(task.x[idx])
            loss = F.cross_entropy(outputs, task.y[idx])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
        scheduler.step()
    return model
