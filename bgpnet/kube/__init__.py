"""bgpnet.kube"""
