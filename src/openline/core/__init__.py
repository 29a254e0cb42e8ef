"""The pure core: wire rules, the call state machine, time and retry arithmetic. No I/O."""
