#!/bin/sh
# four guests per node, pinned, 2 GB each
#PBS -l nodes=1:ppn=16:fast,mem=8gb
#PBS -l walltime=2:00:00
#PBS -vm img=debian-12.qcow2,vms_per_node=4,vcpus=2,ram=2048
#PBS -vm vcpu_pinning=true,fs_type=ramdisk
#PBS -o login1:/home/alice/out.log -e /home/alice/err.log
#PBS -W depend=afterok:41

srun hostname
