#!/bin/bash
#PBS -N vm-hello
#PBS -l nodes=2:ppn=4
#PBS -vm img=debian-12.qcow2,vcpus=2
echo "hello from $(hostname)"
