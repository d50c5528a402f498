/* capsula sign: a signature of an image in a registry, in the form cosign
 * writes (runtime/pull/signature.h), added to those kept under the image's
 * sha256-HEX.sig tag. Given the local IMAGE too, the registry's image must
 * be the one IMAGE pushes as: what is signed is what was built. */
#ifndef CAPSULA_SIGN_H
#define CAPSULA_SIGN_H

int sign_main(int argc, char **argv);

#endif
