#!/bin/bash
#PBS -N lammps-run
#PBS -l nodes=2:ppn=4
#PBS -l walltime=01:00:00
#PBS -j oe
#PBS -m abe -M alice@example.org

cd "$PBS_O_WORKDIR"
mpirun -np 8 ./lmp_mpi -in in.lj
