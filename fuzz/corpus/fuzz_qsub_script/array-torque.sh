#!/bin/bash
#PBS -t 1-10%2
#PBS -l nodes=1:ppn=1 -l pmem=1gb
#PBS -d /scratch/alice -w /scratch/alice
#PBS -m n
#PBS -z
#PBS -vm img=fedora-39.qcow2 -vm vms_per_node=2
echo $PBS_ARRAYID
