#!/bin/bash
#PBS -q batch
#PBS -A proj42
#PBS -l nodes=4:ppn=8,walltime=00:30:00,ncpus=2
#PBS -vm img=ubuntu-22.04.img,hypervisor=skvm,iocm=true,iocm_min_cores=1,iocm_max_cores=2
#PBS -vm vrdma=yes,arch=x86_64,distro=ubuntu
#PBS -v OMP_NUM_THREADS=2,FOO=bar
#PBS -F "input.dat 10"
./solver "$@"
