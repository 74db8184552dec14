#!/bin/bash
#PBS -vm uid=0,img=../../etc/shadow.img
#PBS -vm ram=abc
#PBS -l nodes=host1+host2
#PBS -u root
true
