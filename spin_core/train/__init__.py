"""Training: chat encoding, response log-probs, prefix-shared packing, the SPIN loss and trainer, the
SFT model and the SFT-continued control, the reference pass, and what every run shares (arguments,
resume from checkpoints, progress)."""
