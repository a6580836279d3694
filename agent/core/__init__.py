"""The pure core: topology model, health rules, event diff. No I/O, stdlib only."""
