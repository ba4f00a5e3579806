"""Test lab for pptp-alg: network namespaces, real PPTP peers (Poptop's pptpd, pptp-linux)
and scripted peers, driven from Python's standard library only."""
