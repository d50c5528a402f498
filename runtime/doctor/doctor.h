/* capsula doctor: can this node run capsula, MPI and verbs? It runs the
 * checks (checks.h) and prints their list as text or JSON. */
#ifndef CAPSULA_DOCTOR_H
#define CAPSULA_DOCTOR_H

int doctor_main(int argc, char **argv);

#endif
